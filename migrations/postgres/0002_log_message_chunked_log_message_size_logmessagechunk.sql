--
-- Add field message_chunked to log
--
ALTER TABLE "log_panel_log" ADD COLUMN "message_chunked" boolean DEFAULT false NOT NULL;
ALTER TABLE "log_panel_log" ALTER COLUMN "message_chunked" DROP DEFAULT;
--
-- Add field message_size to log
--
ALTER TABLE "log_panel_log" ADD COLUMN "message_size" integer DEFAULT 0 NOT NULL CHECK ("message_size" >= 0);
ALTER TABLE "log_panel_log" ALTER COLUMN "message_size" DROP DEFAULT;
--
-- Create model LogMessageChunk
--
CREATE TABLE "log_panel_log_message_chunk" ("id" uuid NOT NULL PRIMARY KEY, "index" integer NOT NULL CHECK ("index" >= 0), "text" text NOT NULL, "log_id" uuid NOT NULL, CONSTRAINT "unique_log_message_chunk" UNIQUE ("log_id", "index"));
CREATE INDEX "log_panel_log_message_chunked_be7ebdf6" ON "log_panel_log" ("message_chunked");
ALTER TABLE "log_panel_log_message_chunk" ADD CONSTRAINT "log_panel_log_message_chunk_log_id_546a6a65_fk_log_panel_log_id" FOREIGN KEY ("log_id") REFERENCES "log_panel_log" ("id") DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX "log_panel_log_message_chunk_log_id_546a6a65" ON "log_panel_log_message_chunk" ("log_id");
CREATE INDEX "log_message_chunk_order" ON "log_panel_log_message_chunk" ("log_id", "index");

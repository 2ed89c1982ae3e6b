--
-- Add field message_chunked to log
--
CREATE TABLE "new__log_panel_log" ("message_chunked" bool NOT NULL, "id" char(32) NOT NULL PRIMARY KEY, "timestamp" datetime NOT NULL, "level" varchar(10) NOT NULL, "logger_name" varchar(200) NOT NULL, "message" text NOT NULL, "module" varchar(200) NOT NULL, "pathname" varchar(500) NOT NULL, "line_number" integer NOT NULL);
INSERT INTO "new__log_panel_log" ("id", "timestamp", "level", "logger_name", "message", "module", "pathname", "line_number", "message_chunked") SELECT "id", "timestamp", "level", "logger_name", "message", "module", "pathname", "line_number", 0 FROM "log_panel_log";
DROP TABLE "log_panel_log";
ALTER TABLE "new__log_panel_log" RENAME TO "log_panel_log";
CREATE INDEX "log_panel_log_message_chunked_be7ebdf6" ON "log_panel_log" ("message_chunked");
CREATE INDEX "log_panel_log_timestamp_16bc740c" ON "log_panel_log" ("timestamp");
CREATE INDEX "log_panel_log_logger_name_2f491f10" ON "log_panel_log" ("logger_name");
CREATE INDEX "timestamp_logger_level" ON "log_panel_log" ("timestamp", "logger_name", "level");
CREATE INDEX "logger_name_timestamp" ON "log_panel_log" ("logger_name", "timestamp" DESC);
--
-- Add field message_size to log
--
CREATE TABLE "new__log_panel_log" ("id" char(32) NOT NULL PRIMARY KEY, "timestamp" datetime NOT NULL, "level" varchar(10) NOT NULL, "logger_name" varchar(200) NOT NULL, "message" text NOT NULL, "module" varchar(200) NOT NULL, "pathname" varchar(500) NOT NULL, "line_number" integer NOT NULL, "message_chunked" bool NOT NULL, "message_size" integer unsigned NOT NULL CHECK ("message_size" >= 0));
INSERT INTO "new__log_panel_log" ("id", "timestamp", "level", "logger_name", "message", "module", "pathname", "line_number", "message_chunked", "message_size") SELECT "id", "timestamp", "level", "logger_name", "message", "module", "pathname", "line_number", "message_chunked", 0 FROM "log_panel_log";
DROP TABLE "log_panel_log";
ALTER TABLE "new__log_panel_log" RENAME TO "log_panel_log";
CREATE INDEX "log_panel_log_timestamp_16bc740c" ON "log_panel_log" ("timestamp");
CREATE INDEX "log_panel_log_logger_name_2f491f10" ON "log_panel_log" ("logger_name");
CREATE INDEX "log_panel_log_message_chunked_be7ebdf6" ON "log_panel_log" ("message_chunked");
CREATE INDEX "timestamp_logger_level" ON "log_panel_log" ("timestamp", "logger_name", "level");
CREATE INDEX "logger_name_timestamp" ON "log_panel_log" ("logger_name", "timestamp" DESC);
--
-- Create model LogMessageChunk
--
CREATE TABLE "log_panel_log_message_chunk" ("id" char(32) NOT NULL PRIMARY KEY, "index" integer unsigned NOT NULL CHECK ("index" >= 0), "text" text NOT NULL, "log_id" char(32) NOT NULL REFERENCES "log_panel_log" ("id") DEFERRABLE INITIALLY DEFERRED, CONSTRAINT "unique_log_message_chunk" UNIQUE ("log_id", "index"));
CREATE INDEX "log_panel_log_message_chunk_log_id_546a6a65" ON "log_panel_log_message_chunk" ("log_id");
CREATE INDEX "log_message_chunk_order" ON "log_panel_log_message_chunk" ("log_id", "index");

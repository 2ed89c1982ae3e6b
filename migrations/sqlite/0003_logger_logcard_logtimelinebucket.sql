--
-- Create model Logger
--
CREATE TABLE "log_panel_logger" ("id" char(32) NOT NULL PRIMARY KEY, "name" varchar(200) NOT NULL UNIQUE);
--
-- Create model LogCard
--
CREATE TABLE "log_panel_log_card" ("id" char(32) NOT NULL PRIMARY KEY, "total" bigint unsigned NOT NULL CHECK ("total" >= 0), "total_errors" bigint unsigned NOT NULL CHECK ("total_errors" >= 0), "total_warnings" bigint unsigned NOT NULL CHECK ("total_warnings" >= 0), "last_seen" datetime NULL, "logger_id" char(32) NOT NULL UNIQUE REFERENCES "log_panel_logger" ("id") DEFERRABLE INITIALLY DEFERRED);
--
-- Create model LogTimelineBucket
--
CREATE TABLE "log_panel_log_timeline_bucket" ("id" char(32) NOT NULL PRIMARY KEY, "bucket" datetime NOT NULL, "unit" varchar(4) NOT NULL, "log_count" integer unsigned NOT NULL CHECK ("log_count" >= 0), "error_count" integer unsigned NOT NULL CHECK ("error_count" >= 0), "warning_count" integer unsigned NOT NULL CHECK ("warning_count" >= 0), "logger_id" char(32) NOT NULL REFERENCES "log_panel_logger" ("id") DEFERRABLE INITIALLY DEFERRED, CONSTRAINT "unique_timeline_bucket" UNIQUE ("logger_id", "bucket", "unit"));
CREATE INDEX "log_panel_log_timeline_bucket_logger_id_96c38f85" ON "log_panel_log_timeline_bucket" ("logger_id");
CREATE INDEX "timeline_logger_unit_bucket" ON "log_panel_log_timeline_bucket" ("logger_id", "unit", "bucket");

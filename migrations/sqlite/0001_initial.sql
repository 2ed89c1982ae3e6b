--
-- Create model Log
--
CREATE TABLE "log_panel_log" ("id" char(32) NOT NULL PRIMARY KEY, "timestamp" datetime NOT NULL, "level" varchar(10) NOT NULL, "logger_name" varchar(200) NOT NULL, "message" text NOT NULL, "module" varchar(200) NOT NULL, "pathname" varchar(500) NOT NULL, "line_number" integer NOT NULL);
CREATE INDEX "log_panel_log_timestamp_16bc740c" ON "log_panel_log" ("timestamp");
CREATE INDEX "log_panel_log_logger_name_2f491f10" ON "log_panel_log" ("logger_name");
CREATE INDEX "timestamp_logger_level" ON "log_panel_log" ("timestamp", "logger_name", "level");
CREATE INDEX "logger_name_timestamp" ON "log_panel_log" ("logger_name", "timestamp" DESC);

--
-- Create model Logger
--
CREATE TABLE `log_panel_logger` (`id` uuid NOT NULL PRIMARY KEY, `name` varchar(200) NOT NULL UNIQUE);
--
-- Create model LogCard
--
CREATE TABLE `log_panel_log_card` (`id` uuid NOT NULL PRIMARY KEY, `total` bigint UNSIGNED NOT NULL CHECK (`total` >= 0), `total_errors` bigint UNSIGNED NOT NULL CHECK (`total_errors` >= 0), `total_warnings` bigint UNSIGNED NOT NULL CHECK (`total_warnings` >= 0), `last_seen` datetime(6) NULL, `logger_id` uuid NOT NULL UNIQUE);
--
-- Create model LogTimelineBucket
--
CREATE TABLE `log_panel_log_timeline_bucket` (`id` uuid NOT NULL PRIMARY KEY, `bucket` datetime(6) NOT NULL, `unit` varchar(4) NOT NULL, `log_count` integer UNSIGNED NOT NULL CHECK (`log_count` >= 0), `error_count` integer UNSIGNED NOT NULL CHECK (`error_count` >= 0), `warning_count` integer UNSIGNED NOT NULL CHECK (`warning_count` >= 0), `logger_id` uuid NOT NULL, CONSTRAINT `unique_timeline_bucket` UNIQUE (`logger_id`, `bucket`, `unit`));
ALTER TABLE `log_panel_log_card` ADD CONSTRAINT `log_panel_log_card_logger_id_6ea7e6a8_fk_log_panel_logger_id` FOREIGN KEY (`logger_id`) REFERENCES `log_panel_logger` (`id`);
ALTER TABLE `log_panel_log_timeline_bucket` ADD CONSTRAINT `log_panel_log_timeli_logger_id_96c38f85_fk_log_panel` FOREIGN KEY (`logger_id`) REFERENCES `log_panel_logger` (`id`);
CREATE INDEX `timeline_logger_unit_bucket` ON `log_panel_log_timeline_bucket` (`logger_id`, `unit`, `bucket`);

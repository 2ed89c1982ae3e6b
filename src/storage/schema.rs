//! Django's migrations of `log_panel`, as SQL per database (from `django-admin sqlmigrate`), and the
//! names Django records for them in `django_migrations`.

/// The Django app label.
pub const APP: &str = "log_panel";

/// One Django migration: its recorded name and its DDL per dialect.
pub struct Migration {
    pub name: &'static str,
    pub postgres: &'static str,
    pub sqlite: &'static str,
    pub mysql: &'static str,
}

/// The SQL databases the migrations are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Sqlite,
    MySql,
}

impl Migration {
    /// This migration's DDL for `engine`.
    pub fn sql(&self, engine: Engine) -> &'static str {
        match engine {
            Engine::Postgres => self.postgres,
            Engine::Sqlite => self.sqlite,
            Engine::MySql => self.mysql,
        }
    }
}

macro_rules! migration {
    ($name:literal) => {
        Migration {
            name: $name,
            postgres: include_str!(concat!("../../migrations/postgres/", $name, ".sql")),
            sqlite: include_str!(concat!("../../migrations/sqlite/", $name, ".sql")),
            mysql: include_str!(concat!("../../migrations/mysql/", $name, ".sql")),
        }
    };
}

/// In order. 0004 changes only `choices` and has no SQL, but Django records it.
pub const MIGRATIONS: [Migration; 4] = [
    migration!("0001_initial"),
    migration!("0002_log_message_chunked_log_message_size_logmessagechunk"),
    migration!("0003_logger_logcard_logtimelinebucket"),
    migration!("0004_alter_logtimelinebucket_unit"),
];

/// The migrations not yet recorded in `django_migrations` (`done`: the names recorded for this app).
pub fn pending(done: &[String]) -> impl Iterator<Item = &'static Migration> + '_ {
    MIGRATIONS
        .iter()
        .filter(move |m| !done.iter().any(|d| d == m.name))
}

/// True when the SQL has a statement (0004 is only comments).
pub fn has_statements(sql: &str) -> bool {
    sql.lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
}

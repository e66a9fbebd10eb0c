//! `DatabaseUrl`: a PostgreSQL connection URL, which may hold a password.
//! It shows itself only masked (`Display` and `Debug` both), so no log
//! line, error or reply can leak the secret by accident; the text itself
//! is reached only to connect and to save it for the next start.

use std::fmt;
use std::str::FromStr;

use postgres::config::Host;

use crate::database_password::PasswordSource;
use crate::database_tls::TlsSettings;
use tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Clone)]
pub struct DatabaseUrl {
    text: String,
    config: postgres::Config,
    /// Where the password comes from when the URL holds none.
    passwords: PasswordSource,
    /// `sslmode` and `sslrootcert`.
    tls: TlsSettings,
}

impl DatabaseUrl {
    /// Reads a `postgresql://` URL or a `key=value` connection string. The
    /// error names the URL masked.
    pub fn parse(text: &str) -> Result<DatabaseUrl, String> {
        let text = text.trim();
        let masked = mask(text);
        let (tls, rest) = TlsSettings::split(text).map_err(|e| format!("the database URL {masked}: {e}"))?;
        let mut config =
            postgres::Config::from_str(&rest).map_err(|e| format!("the database URL {masked} cannot be read: {e}"))?;
        config.ssl_mode(tls.postgres_mode());
        if config.get_hosts().is_empty() {
            return Err(format!(
                "the database URL {masked} names no host: give a host name (postgresql://HOST/DB) or a \
                 socket folder (postgresql:///DB?host=/run/postgresql)"
            ));
        }
        if config.get_dbname().is_none() {
            return Err(format!("the database URL {masked} names no database (postgresql://HOST/DATABASE)"));
        }
        Ok(DatabaseUrl { text: text.to_owned(), config, passwords: PasswordSource::default(), tls })
    }

    /// The same URL, taking its password from `passwords` when it holds none.
    pub fn with_passwords(mut self, passwords: PasswordSource) -> DatabaseUrl {
        self.passwords = passwords;
        self
    }

    /// What connecting takes, for connecting only: the URL's settings with
    /// the password from the configured sources when the URL holds none,
    /// and the TLS connector its `sslmode` asks for (none over a Unix
    /// socket, which, as in libpq, never asks for TLS: it is local).
    pub fn connect_settings(&self) -> Result<(postgres::Config, Option<MakeRustlsConnect>), String> {
        let mut config = self.config.clone();
        let tls = if self.by_socket() {
            config.ssl_mode(postgres::config::SslMode::Disable);
            None
        } else {
            self.tls.connector()?
        };
        if config.get_password().is_none() {
            if let Some(password) = self.passwords.password_for(&config)? {
                config.password(password);
            }
        }
        Ok((config, tls))
    }

    /// What the URL says of TLS.
    pub fn tls(&self) -> &TlsSettings {
        &self.tls
    }

    /// Whether the server is reached by a Unix socket.
    pub fn by_socket(&self) -> bool {
        self.config.get_hosts().iter().all(|h| matches!(h, Host::Unix(_)))
    }

    /// Whether the URL itself holds a password.
    pub fn has_password(&self) -> bool {
        self.config.get_password().is_some()
    }

    /// The connection settings as the URL gives them.
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The URL as given, password included: for saving it, never for
    /// showing it.
    pub fn secret_text(&self) -> &str {
        &self.text
    }

    /// `PostgreSQL at HOST:PORT, database NAME`: what messages name.
    pub fn target(&self) -> String {
        let db = self.config.get_dbname().unwrap_or("?");
        format!("PostgreSQL at {}, database {db}", self.host())
    }

    /// `HOST:PORT`, or the socket's path.
    pub fn host(&self) -> String {
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) => format!("{host}:{port}"),
            Some(Host::Unix(dir)) => format!("{}/.s.PGSQL.{port}", dir.display()),
            None => "?".to_owned(),
        }
    }
}

impl PartialEq for DatabaseUrl {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for DatabaseUrl {}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.text))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", mask(&self.text))
    }
}

const MASK: &str = "***";

/// The connection string with every password replaced by `***`: the one in
/// a URL's user part, a `password=` query parameter, and a `password=` key
/// of the `key=value` form.
pub fn mask(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else { return mask_key_value(text) };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (user_info, host) = authority.split_at(at);
            match user_info.find(':') {
                Some(colon) => format!("{}:{MASK}{host}", &user_info[..colon]),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}={MASK}"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{}{authority}{tail}", &text[..scheme_end + 3])
}

/// `host=... password=secret` with the password masked, quoted or not.
fn mask_key_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_password_key(rest) {
        out.push_str(&rest[..at]);
        let after_key = &rest[at..];
        let eq = after_key.find('=').map_or(after_key.len(), |i| i + 1);
        out.push_str(&after_key[..eq]);
        out.push_str(MASK);
        let value = after_key[eq..].trim_start();
        let skipped = after_key.len() - eq - value.len();
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            // Up to the closing quote that is not escaped.
            let mut escaped = false;
            let close = quoted
                .char_indices()
                .find(|&(_, c)| {
                    let end = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    end
                })
                .map_or(quoted.len(), |(i, _)| i + 1);
            close + 1
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        rest = &after_key[eq + skipped + value_len.min(value.len())..];
    }
    out.push_str(rest);
    out
}

/// Where a `password` key (followed by `=`) starts, at a word boundary.
fn find_password_key(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        let at = from + i;
        let starts_word = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let then_eq = lower[at + "password".len()..].trim_start().starts_with('=');
        if starts_word && then_eq {
            return Some(at);
        }
        from = at + "password".len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let cases = [
            ("postgresql://ada:s3cr%40t@db.example:5433/ms", "postgresql://ada:***@db.example:5433/ms"),
            (
                "postgres://ada@db/ms?password=hunter2&sslmode=disable",
                "postgres://ada@db/ms?password=***&sslmode=disable",
            ),
            ("postgresql:///ms?host=/run/postgresql", "postgresql:///ms?host=/run/postgresql"),
            ("host=db password=hunter2 dbname=ms", "host=db password=*** dbname=ms"),
            ("host=db password = 'a b\\' c' dbname=ms", "host=db password =*** dbname=ms"),
        ];
        for (text, masked) in cases {
            assert_eq!(mask(text), masked, "{text}");
        }
        let url = DatabaseUrl::parse("postgresql://ada:hunter2@127.0.0.1:5999/ms").unwrap();
        for shown in [url.to_string(), format!("{url:?}"), url.target()] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert_eq!(url.target(), "PostgreSQL at 127.0.0.1:5999, database ms");
        let err = DatabaseUrl::parse("postgresql://ada:hunter2@db:notaport/ms").unwrap_err();
        assert!(!err.contains("hunter2") && err.contains("***"), "{err}");
        assert!(DatabaseUrl::parse("postgresql://db").unwrap_err().contains("names no database"));
    }
}

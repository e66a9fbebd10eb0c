//! Where the database password comes from when the URL holds none, so that
//! no password needs to be in `storage-config.yaml`, a file the team
//! commits: `storage.database.password_env` (an environment variable of
//! the daemon's), `storage.database.password_file` (a file outside the
//! repository that only its owner may read), else the password file libpq
//! users already keep (`PGPASSFILE`, or `~/.pgpass`), read as libpq reads it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use postgres::config::Host;

/// The sources `storage-config.yaml` names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PasswordSource {
    /// `password_env`: the variable that holds it.
    pub env: Option<String>,
    /// `password_file`: the file that holds it (its first line).
    pub file: Option<PathBuf>,
}

impl PasswordSource {
    /// The password to connect with `config` (which has none): from the
    /// first source named, else from the pgpass file; `None` when none
    /// has one. An error names the source at fault, never a password.
    pub fn password_for(&self, config: &postgres::Config) -> Result<Option<String>, String> {
        if let Some(name) = &self.env {
            return match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(Some(value)),
                _ => Err(format!(
                    "storage.database.password_env names {name}, which is not set in the daemon's environment"
                )),
            };
        }
        if let Some(path) = &self.file {
            return read_private(path, "storage.database.password_file")
                .map(|text| Some(text.lines().next().unwrap_or_default().to_owned()));
        }
        let Some(path) = pgpass_path() else { return Ok(None) };
        let text = match std::fs::metadata(&path) {
            Err(_) => return Ok(None),
            // libpq ignores a password file others may read.
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                tracing::warn!(file = %path.display(), "the password file may be read by others; ignoring it (chmod 0600 it)");
                return Ok(None);
            }
            Ok(_) => std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        };
        Ok(pgpass_lookup(&text, &Wanted::of(config)))
    }
}

/// `PGPASSFILE`, else `~/.pgpass`.
fn pgpass_path() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => std::env::var_os("HOME").map(|home| Path::new(&home).join(".pgpass")),
    }
}

/// A file only its owner may read or write; the error says what to do.
fn read_private(path: &Path, setting: &str) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{setting}: cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{setting}: {} is not a file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{setting}: {} may be read by others (mode {mode:04o}); a password file must be 0600 or stricter",
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{setting}: cannot read {}: {e}", path.display()))
}

/// What a pgpass line must match: host, port, database and user.
struct Wanted {
    hosts: Vec<String>,
    port: String,
    database: String,
    user: String,
}

impl Wanted {
    fn of(config: &postgres::Config) -> Wanted {
        let hosts = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => vec![host.clone()],
            // A socket connection matches by its folder, and as `localhost`
            // when the folder is a default one, as libpq matches it.
            Some(Host::Unix(dir)) => {
                let default = ["/var/run/postgresql", "/run/postgresql", "/tmp"].iter().any(|d| dir == Path::new(d));
                let mut hosts = vec![dir.display().to_string()];
                hosts.extend(default.then(|| "localhost".to_owned()));
                hosts
            }
            None => vec!["localhost".to_owned()],
        };
        Wanted {
            hosts,
            port: config.get_ports().first().copied().unwrap_or(5432).to_string(),
            database: config.get_dbname().unwrap_or_default().to_owned(),
            user: config.get_user().map(str::to_owned).unwrap_or_else(|| std::env::var("USER").unwrap_or_default()),
        }
    }
}

/// The password of the first line matching `wanted` (`*` matches
/// anything; `\:` and `\\` are a colon and a backslash).
fn pgpass_lookup(text: &str, wanted: &Wanted) -> Option<String> {
    text.lines().filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty()).find_map(|line| {
        let fields = split_fields(line);
        let [host, port, database, user, password] = fields.as_slice() else { return None };
        let matches = |field: &str, value: &str| field == "*" || field == value;
        let host_matches = host == "*" || wanted.hosts.iter().any(|h| h == host);
        (host_matches
            && matches(port, &wanted.port)
            && matches(database, &wanted.database)
            && matches(user, &wanted.user))
        .then(|| password.clone())
    })
}

fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().into_iter().for_each(|f| f.extend(chars.next())),
            // The fifth field, the password, may hold colons.
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().into_iter().for_each(|f| f.push(c)),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(host: &str, user: &str) -> Wanted {
        Wanted { hosts: vec![host.into()], port: "5432".into(), database: "ms".into(), user: user.into() }
    }

    #[test]
    fn pgpass_lines_match_as_libpq_matches_them() {
        let text = "# comment\nother:5432:ms:ada:wrong\ndb:5432:ms:ada:pa\\:ss:word\n*:*:*:bob:any\n";
        assert_eq!(pgpass_lookup(text, &wanted("db", "ada")).as_deref(), Some("pa:ss:word"));
        assert_eq!(pgpass_lookup(text, &wanted("elsewhere", "bob")).as_deref(), Some("any"));
        assert_eq!(pgpass_lookup(text, &wanted("elsewhere", "ada")), None);
    }

    #[test]
    fn a_password_file_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let source = PasswordSource { env: None, file: Some(path.clone()) };
        let config: postgres::Config = "postgresql://ada@db/ms".parse().unwrap();
        let err = source.password_for(&config).unwrap_err();
        assert!(err.contains("may be read by others (mode 0644)") && !err.contains("secret"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(source.password_for(&config).unwrap().as_deref(), Some("secret"));
    }
}

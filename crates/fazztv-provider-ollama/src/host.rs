//! Where the Ollama server is: `base_url`, else `OLLAMA_URL`, else `OLLAMA_HOST`, else the
//! default, each normalised the way Ollama's own client reads `OLLAMA_HOST`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fazztv_core::{Environment, Error, ErrorKind};

/// Where Ollama listens by default.
pub const DEFAULT_BASE_URL: &str = "http://localhost:11434";

/// Ollama's port, used when an address names none and has no scheme.
const DEFAULT_PORT: u16 = 11434;

/// The server root (no trailing slash) from the first source that is set, and which source
/// that was (for messages).
pub(crate) fn resolve_base_url(
    configured: Option<&str>,
    environment: &Environment,
) -> Result<(String, &'static str), Error> {
    let sources = [
        ("`base_url`", configured.map(str::to_owned)),
        ("OLLAMA_URL", environment.var("OLLAMA_URL")),
        ("OLLAMA_HOST", environment.var("OLLAMA_HOST")),
    ];
    let Some((source, value)) = sources
        .into_iter()
        .find_map(|(source, value)| Some((source, value.filter(|v| !v.trim().is_empty())?)))
    else {
        return Ok((DEFAULT_BASE_URL.to_owned(), "the default address"));
    };
    let url = normalise(&value).map_err(|reason| {
        // An address with userinfo may carry a password: never echo it.
        let shown = if value.contains('@') {
            "[redacted]".to_owned()
        } else {
            format!("`{value}`")
        };
        Error::new(
            ErrorKind::Configuration,
            format!("invalid Ollama address {shown} in {source}: {reason}"),
        )
    })?;
    Ok((url, source))
}

/// Whether `base_url` (as normalised) is ollama.com's API, where every model runs in the
/// cloud and is billed by ollama.com.
pub(crate) fn is_ollama_cloud(base_url: &str) -> bool {
    fazztv_core::http::Url::parse(base_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|host| host == "ollama.com" || host.ends_with(".ollama.com"))
}

/// Normalises an address as Ollama's client does (`envconfig.Host`): surrounding quotes and
/// spaces are dropped; no scheme means `http` and port 11434; `http://`/`https://` without a
/// port mean 80/443; `:port` alone means the loopback host; bare and bracketed IPv6 work;
/// `ollama.com` alone means `https://ollama.com`. A path is kept (reverse proxies).
///
/// Deliberate differences: the unspecified addresses `0.0.0.0` and `::` (what servers bind
/// to, and so what `OLLAMA_HOST` often says) become loopback, because connecting to them fails
/// on some systems; a trailing `/api` is dropped (the cloud docs give `https://ollama.com/api`)
/// and `/v1` (the OpenAI-compatible API) is refused; an invalid port, another scheme,
/// credentials, a query or a fragment are errors instead of being silently replaced.
pub(crate) fn normalise(raw: &str) -> Result<String, String> {
    let value = raw.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    let (scheme, rest, default_port) = match value.split_once("://") {
        None if value.eq_ignore_ascii_case("ollama.com") => ("https", "ollama.com", 443),
        None => ("http", value, DEFAULT_PORT),
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "http" => ("http", rest, 80),
            "https" => ("https", rest, 443),
            other => return Err(format!("unsupported scheme `{other}`; use http or https")),
        },
    };
    if rest.contains(['?', '#']) {
        return Err("it must not contain a query or a fragment".to_owned());
    }
    let (host_port, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host_port.contains('@') {
        return Err(
            "credentials in the address are not allowed; put the key in `api_key_env`".to_owned(),
        );
    }
    let (host, port) = split_host_port(host_port, default_port)?;
    let path = api_root(path)?;
    let url = format!("{scheme}://{host}:{port}{path}");
    let parsed = fazztv_core::http::Url::parse(&url).map_err(|error| format!("{error}"))?;
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// Host (bracketed if IPv6, loopback for unspecified) and port.
fn split_host_port(host_port: &str, default_port: u16) -> Result<(String, u16), String> {
    let ip = |ip: IpAddr| match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) if v6.is_unspecified() => format!("[{}]", Ipv6Addr::LOCALHOST),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let port = |text: &str| {
        if text.is_empty() {
            return Ok(default_port);
        }
        text.parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("invalid port `{text}` (expected 1-65535)"))
    };
    if host_port.is_empty() {
        return Ok((Ipv4Addr::LOCALHOST.to_string(), default_port));
    }
    // A bare IPv6 address (`::1`) has colons but no port.
    let unbracketed = host_port
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host_port);
    if let Ok(address) = unbracketed.parse::<IpAddr>() {
        return Ok((ip(address), default_port));
    }
    if let Some(bracketed) = host_port.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or("unclosed `[` in an IPv6 address")?;
        let address = inside
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("`{inside}` is not an IPv6 address"))?;
        let port_text = match after {
            "" => "",
            _ => after
                .strip_prefix(':')
                .ok_or("expected `:port` after `]`")?,
        };
        return Ok((ip(IpAddr::V6(address)), port(port_text)?));
    }
    match host_port.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => {
            Err("an IPv6 address with a port must be bracketed: `[::1]:11434`".to_owned())
        }
        Some((host, port_text)) => {
            let host = match host.parse::<IpAddr>() {
                Ok(address) => ip(address),
                Err(_) if host.is_empty() => Ipv4Addr::LOCALHOST.to_string(),
                Err(_) => host.to_owned(),
            };
            Ok((host, port(port_text)?))
        }
        None => Ok((host_port.to_owned(), default_port)),
    }
}

/// The path prefix of the server root: `/api` is where our endpoints live, so it is dropped.
fn api_root(path: &str) -> Result<String, String> {
    let path = path.trim_end_matches('/');
    let root = path
        .strip_suffix("api")
        .filter(|prefix| prefix.is_empty() || prefix.ends_with('/'))
        .map_or(path, |prefix| prefix.trim_end_matches('/'));
    if root == "v1" || root.ends_with("/v1") {
        return Err(
            "`/v1` is Ollama's OpenAI-compatible API; give the server root instead \
                    (e.g. http://localhost:11434), fazztv uses the native /api endpoints"
                .to_owned(),
        );
    }
    Ok(if root.is_empty() {
        String::new()
    } else {
        format!("/{root}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_com_is_the_cloud_and_other_hosts_are_not() {
        for cloud in ["https://ollama.com", "https://www.ollama.com/x"] {
            assert!(is_ollama_cloud(cloud), "{cloud}");
        }
        for own in [
            "http://localhost:11434",
            "http://proxy.lan/ollama",
            "https://notollama.com",
            "https://ollama.com.example.net",
        ] {
            assert!(!is_ollama_cloud(own), "{own}");
        }
    }

    #[test]
    fn addresses_are_normalised_like_ollamas_client() {
        let cases = [
            ("0.0.0.0", "http://127.0.0.1:11434"),
            ("0.0.0.0:11434", "http://127.0.0.1:11434"),
            ("\"0.0.0.0:8080\"", "http://127.0.0.1:8080"),
            (" '127.0.0.1' ", "http://127.0.0.1:11434"),
            ("1.2.3.4", "http://1.2.3.4:11434"),
            (":56789", "http://127.0.0.1:56789"),
            ("1.2.3.4:56789", "http://1.2.3.4:56789"),
            ("http://1.2.3.4", "http://1.2.3.4"),
            ("https://1.2.3.4", "https://1.2.3.4"),
            ("https://1.2.3.4:56789", "https://1.2.3.4:56789"),
            ("example.com", "http://example.com:11434"),
            ("example.com:56789", "http://example.com:56789"),
            ("example.com:", "http://example.com:11434"),
            ("HTTP://Example.COM", "http://example.com"),
            ("http://example.com:56789", "http://example.com:56789"),
            (
                "https://example.com:56789/path",
                "https://example.com:56789/path",
            ),
            ("https://example.com/path/", "https://example.com/path"),
            ("[0001:002:003:0004::1]", "http://[1:2:3:4::1]:11434"),
            ("[0001:002:003:0004::1]:56789", "http://[1:2:3:4::1]:56789"),
            ("::1", "http://[::1]:11434"),
            ("[::]:9000", "http://[::1]:9000"),
            ("https://[::1]", "https://[::1]"),
            ("localhost", "http://localhost:11434"),
            ("http://localhost:11434/", "http://localhost:11434"),
            ("ollama.com", "https://ollama.com"),
            ("https://ollama.com/api", "https://ollama.com"),
            ("http://proxy.lan/ollama/api/", "http://proxy.lan/ollama"),
            ("http://proxy.lan/myapi", "http://proxy.lan/myapi"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalise(input).as_deref(), Ok(expected), "input {input:?}");
        }
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        let cases = [
            ("ftp://host", "unsupported scheme `ftp`"),
            ("host:99999", "invalid port `99999`"),
            ("host:0", "invalid port `0`"),
            ("host:abc", "invalid port `abc`"),
            ("fe80::1:11434x", "must be bracketed"),
            ("[::1", "unclosed"),
            ("[::1]x", "expected `:port`"),
            ("http://localhost:11434/v1", "OpenAI-compatible"),
            ("http://host/?x=1", "query"),
            ("http://user:pw@host", "credentials"),
            ("http://exa mple.com", "invalid"),
        ];
        for (input, expected) in cases {
            let error = normalise(input).unwrap_err();
            assert!(error.contains(expected), "{input:?}: {error}");
        }
    }

    #[test]
    fn sources_are_tried_in_order_and_errors_name_the_source() {
        let env = Environment::from_vars([
            ("OLLAMA_URL", "http://url-host:1"),
            ("OLLAMA_HOST", "host-host"),
        ]);
        assert_eq!(
            resolve_base_url(Some("cfg:2"), &env).unwrap().0,
            "http://cfg:2"
        );
        assert_eq!(resolve_base_url(None, &env).unwrap().0, "http://url-host:1");
        let env = Environment::from_vars([("OLLAMA_URL", " "), ("OLLAMA_HOST", "0.0.0.0")]);
        assert_eq!(
            resolve_base_url(Some(""), &env).unwrap().0,
            "http://127.0.0.1:11434"
        );
        assert_eq!(
            resolve_base_url(None, &Environment::from_vars::<&str, &str>([]))
                .unwrap()
                .0,
            DEFAULT_BASE_URL
        );

        let env = Environment::from_vars([("OLLAMA_HOST", "host:70000")]);
        let error = resolve_base_url(None, &env).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Configuration);
        assert_eq!(
            error.message(),
            "invalid Ollama address `host:70000` in OLLAMA_HOST: invalid port `70000` (expected 1-65535)"
        );
        let error = resolve_base_url(Some("http://me:hunter2@host"), &env).unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(error.message().contains("in `base_url`"), "{error}");
    }
}

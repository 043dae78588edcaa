//! The HTTP client both SDKs send with, and the checks of a base URL.

use std::time::Duration;

use url::Url;

/// How the default `reqwest::Client` is built.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Let the connection negotiate HTTP/2 (else HTTP/1.1 only).
    pub http2: bool,
    /// Accept any TLS certificate (self-signed on-premises servers).
    pub accept_invalid_certs: bool,
}

impl ClientOptions {
    /// HTTP/1.1, verified certificates, the given connect timeout.
    pub fn new(connect_timeout: Duration) -> Self {
        ClientOptions {
            connect_timeout,
            http2: false,
            accept_invalid_certs: false,
        }
    }
}

/// Builds the client. Redirects are not followed: with both vendors a redirect means a wrong
/// URL (a web host instead of the API host, http → https), and following it would turn the
/// POST into a GET. It surfaces as an HTTP error instead.
pub fn client(options: &ClientOptions) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .redirect(reqwest::redirect::Policy::none());
    if !options.http2 {
        builder = builder.http1_only();
    }
    #[cfg(feature = "native-tls")]
    {
        builder = builder.tls_backend_native();
    }
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    {
        builder = builder.tls_danger_accept_invalid_certs(options.accept_invalid_certs);
    }
    #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
    if options.accept_invalid_certs {
        return Err("no TLS backend compiled in".into());
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Parses a base URL: http or https, a host, no query or fragment. The path is left to the
/// SDK (each vendor has its own site path rules); the error is the reason alone.
///
/// ```
/// use fxk3_kernel::http::base_url;
/// assert_eq!(base_url(" https://erp.example.com/k3cloud ").unwrap().path(), "/k3cloud");
/// assert_eq!(base_url("ftp://x").unwrap_err(), "must start with http:// or https://");
/// ```
pub fn base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must start with http:// or https://".into());
    }
    if url.host().is_none() {
        return Err("has no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert!(base_url("https://h/x?y=1").unwrap_err().contains("query"));
        assert!(base_url("https://h/#f").unwrap_err().contains("fragment"));
        assert!(base_url("not a url").is_err());
        assert_eq!(
            base_url("http://127.0.0.1:8000").unwrap().as_str(),
            "http://127.0.0.1:8000/"
        );
    }

    #[test]
    fn the_default_client_builds() {
        let mut options = ClientOptions::new(Duration::from_secs(1));
        assert!(client(&options).is_ok());
        options.http2 = true;
        options.accept_invalid_certs = true;
        assert!(client(&options).is_ok());
    }
}

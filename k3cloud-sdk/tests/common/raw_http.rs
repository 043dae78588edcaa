//! A minimal HTTP/1.1 server on a raw socket, for what wiremock hides: the request line as sent
//! (its HTTP version), requests that overlap in time, the ALPN a TLS client negotiated.
//!
//! Each request is answered after an async `tokio::time::sleep` of the configured delay, so
//! that with paused time many requests can be in flight at once without any real wait.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// `POST /k3cloud/… HTTP/1.1`, without the line end.
    pub request_line: String,
    /// Header names lower-cased, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the whole request had arrived (tokio time, so paused time applies).
    pub arrived: Instant,
}

impl RawRequest {
    /// All values of a header.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<RawRequest>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// The ALPN protocol of each TLS connection whose handshake succeeded.
    alpn: Mutex<Vec<Option<Vec<u8>>>>,
    /// Counted on a watch channel, so that a test can wait for the count without polling.
    failed_handshakes: tokio::sync::watch::Sender<usize>,
}

/// A running server; it stops when the test's runtime does.
pub struct RawServer {
    pub addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
}

impl RawServer {
    /// Plain HTTP on 127.0.0.1, answering every request with `answer` (JSON) after `delay`.
    pub async fn start(answer: &str, delay: Duration) -> RawServer {
        RawServer::start_inner(answer, delay, None).await
    }

    /// HTTPS on 127.0.0.1 with the given acceptor. A connection that negotiates `h2` is closed
    /// after the handshake (this server speaks HTTP/1.1 only); its ALPN is still recorded.
    pub async fn start_tls(answer: &str, delay: Duration, acceptor: TlsAcceptor) -> RawServer {
        RawServer::start_inner(answer, delay, Some(acceptor)).await
    }

    async fn start_inner(answer: &str, delay: Duration, tls: Option<TlsAcceptor>) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let server = RawServer {
            addr,
            tls: tls.is_some(),
            state: Arc::clone(&state),
        };
        let answer: Arc<str> = answer.into();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&state);
                let answer = Arc::clone(&answer);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(socket, &state, &answer, delay).await,
                        Some(acceptor) => match acceptor.accept(socket).await {
                            Ok(stream) => {
                                let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                                let h2 = alpn.as_deref() == Some(b"h2");
                                state.alpn.lock().unwrap().push(alpn);
                                if !h2 {
                                    serve(stream, &state, &answer, delay).await;
                                }
                            }
                            Err(_) => {
                                state.failed_handshakes.send_modify(|n| *n += 1);
                            }
                        },
                    }
                });
            }
        });
        server
    }

    /// `http://127.0.0.1:port` or `https://…`.
    pub fn uri(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<RawRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The most requests that were ever being answered at the same time.
    pub fn peak_in_flight(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }

    pub fn negotiated_alpn(&self) -> Vec<Option<Vec<u8>>> {
        self.state.alpn.lock().unwrap().clone()
    }

    /// TLS handshakes that failed, once at least `at_least` have (the client may report its
    /// failure before this server has read the alert); gives up after 5 s.
    pub async fn failed_handshakes(&self, at_least: usize) -> usize {
        let mut count = self.state.failed_handshakes.subscribe();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), count.wait_for(|n| *n >= at_least)).await;
        *count.borrow()
    }
}

/// Serves the requests of one connection, one after the other (keep-alive).
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    state: &State,
    answer: &str,
    delay: Duration,
) {
    let mut stream = BufReader::new(stream);
    while let Some(request) = read_request(&mut stream).await {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak.fetch_max(now, Ordering::SeqCst);
        state.requests.lock().unwrap().push(request);
        tokio::time::sleep(delay).await;
        // Over before the answer leaves: once the client has it, it may start another call.
        state.in_flight.fetch_sub(1, Ordering::SeqCst);
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\n\
             content-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

/// Reads one request (head and `content-length` body); `None` at the end of the connection.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> Option<RawRequest> {
    let mut request_line = String::new();
    if stream.read_line(&mut request_line).await.ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap_or(0));
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(RawRequest {
        request_line: request_line.trim_end_matches(['\r', '\n']).to_owned(),
        headers,
        body,
        arrived: Instant::now(),
    })
}

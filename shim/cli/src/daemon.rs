//! The node daemon (`wasipodd`) as the CLI reaches it: the kubeconfig the
//! daemon wrote (its address, CA and token), and HTTPS requests to its
//! Kubernetes API. `wasipod get`, `logs`, `stop` and `rm` use it when a
//! daemon answers, and the records on disk otherwise.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use serde_json::Value;
use wasipod::PodObject;

/// How long reaching the daemon may take before it counts as not running.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A running daemon.
pub(crate) struct Client {
    host: String,
    port: u16,
    token: String,
    tls: Arc<rustls::ClientConfig>,
    rt: tokio::runtime::Runtime,
}

/// A failure the API reported (its `Status`).
#[derive(Debug)]
pub(crate) struct ApiError {
    /// The HTTP status code.
    pub code: u16,
    /// `Status.message`.
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// Whether the object does not exist (404).
    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }
}

impl Client {
    /// The daemon the kubeconfig at `path` names, if it answers: `None`
    /// when there is no such file or nothing listens at its address. A
    /// kubeconfig that cannot be read, or a server that is not a wasipod
    /// daemon, is an error.
    pub fn find(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let config: Value = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{}: not a kubeconfig", path.display()))?;
        let cluster = &config["clusters"][0]["cluster"];
        let server = cluster["server"].as_str().with_context(|| {
            format!("{}: clusters[0].cluster.server is missing", path.display())
        })?;
        let (host, port) = host_port(server).with_context(|| {
            format!(
                "{}: server {server:?} is not https://HOST:PORT",
                path.display()
            )
        })?;
        let ca = cluster["certificate-authority-data"]
            .as_str()
            .with_context(|| {
                format!(
                    "{}: clusters[0].cluster.certificate-authority-data is missing",
                    path.display()
                )
            })?;
        let ca = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .with_context(|| {
                format!(
                    "{}: certificate-authority-data is not base64",
                    path.display()
                )
            })?;
        let token = config["users"][0]["user"]["token"]
            .as_str()
            .with_context(|| format!("{}: users[0].user.token is missing", path.display()))?
            .to_string();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca.as_slice()) {
            roots
                .add(cert.with_context(|| format!("{}: the CA certificate", path.display()))?)
                .with_context(|| format!("{}: the CA certificate", path.display()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = Self {
            host,
            port,
            token,
            tls: Arc::new(tls),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        };
        let version = match client.rt.block_on(client.send("GET", "/version")) {
            Ok((200, body)) => body,
            Ok((code, _)) => bail!("{server} answered /version with {code}"),
            Err(e) if is_unreachable(&e) => return Ok(None),
            Err(e) => return Err(e.context(format!("reaching the daemon at {server}"))),
        };
        let version: Value = serde_json::from_slice(&version).unwrap_or(Value::Null);
        if !version["gitVersion"]
            .as_str()
            .is_some_and(|v| v.contains("wasipod"))
        {
            bail!("{server} (from {}) is not a wasipod daemon", path.display());
        }
        Ok(Some(client))
    }

    /// A TLS connection to the daemon.
    async fn connect(&self) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| anyhow!(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())?;
        Ok(tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await?)
    }

    /// One request; the status code and body.
    async fn send(&self, method: &str, path: &str) -> Result<(u16, Vec<u8>)> {
        let tls = self.connect().await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        self.rt.spawn(conn);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        let code = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes().to_vec();
        Ok((code, body))
    }

    /// A request whose success is `2xx`: the body, or the API's error.
    pub fn call(&self, method: &str, path: &str) -> Result<Vec<u8>> {
        let (code, body) = self.rt.block_on(self.send(method, path))?;
        if (200..300).contains(&code) {
            return Ok(body);
        }
        let status: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let message = status["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        Err(ApiError { code, message }.into())
    }

    /// Runs `argv` in a container of a pod (`kubectl exec`'s protocol,
    /// `v5.channel.k8s.io`): its output to this process's stdout and
    /// stderr, this process's stdin to it with `stdin`; its exit code.
    pub fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        argv: &[String],
        stdin: bool,
    ) -> Result<i32> {
        self.rt
            .block_on(self.exec_async(namespace, pod, container, argv, stdin))
    }

    async fn exec_async(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        argv: &[String],
        stdin: bool,
    ) -> Result<i32> {
        use futures_util::{SinkExt, StreamExt};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
        let mut query: Vec<String> = argv
            .iter()
            .map(|a| format!("command={}", encode(a)))
            .collect();
        if let Some(c) = container {
            query.push(format!("container={}", encode(c)));
        }
        query.extend(["stdout=true".into(), "stderr=true".into()]);
        if stdin {
            query.push("stdin=true".into());
        }
        let url = format!(
            "wss://{}:{}/api/v1/namespaces/{namespace}/pods/{pod}/exec?{}",
            self.host,
            self.port,
            query.join("&")
        );
        let mut request = url.into_client_request()?;
        let headers = request.headers_mut();
        headers.insert("Authorization", format!("Bearer {}", self.token).parse()?);
        headers.insert("Sec-WebSocket-Protocol", "v5.channel.k8s.io".parse()?);
        let tls = self.connect().await?;
        let (ws, _) = match tokio_tungstenite::client_async(request, tls).await {
            Ok(ok) => ok,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response.body().clone().unwrap_or_default();
                let status: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let message = status["message"].as_str().map(str::to_string);
                return Err(ApiError {
                    code: response.status().as_u16(),
                    message: message.unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        let (mut sink, mut incoming) = ws.split();
        let feeding = if stdin {
            Some(self.rt.spawn(async move {
                let mut input = tokio::io::stdin();
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    let n = match input.read(&mut buf[1..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    buf[0] = 0;
                    if sink
                        .send(Message::Binary(buf[..=n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                // v5: stdin's end.
                let _ = sink.send(Message::Binary(vec![255, 0].into())).await;
            }))
        } else {
            None
        };
        let mut out = tokio::io::stdout();
        let mut err = tokio::io::stderr();
        let mut code = None;
        while let Some(message) = incoming.next().await {
            let data = match message? {
                Message::Binary(d) => d,
                Message::Close(_) => break,
                _ => continue,
            };
            match data.first() {
                Some(1) => out.write_all(&data[1..]).await?,
                Some(2) => err.write_all(&data[1..]).await?,
                Some(3) => {
                    let status: Value = serde_json::from_slice(&data[1..]).unwrap_or(Value::Null);
                    code = Some(match status["status"].as_str() {
                        Some("Success") => 0,
                        _ => match status["details"]["causes"][0]["message"]
                            .as_str()
                            .and_then(|c| c.parse().ok())
                        {
                            Some(c) => c,
                            None => bail!(
                                "{}",
                                status["message"].as_str().unwrap_or("the exec failed")
                            ),
                        },
                    });
                }
                _ => {}
            }
        }
        out.flush().await?;
        err.flush().await?;
        if let Some(f) = feeding {
            f.abort();
        }
        code.ok_or_else(|| anyhow!("the daemon closed the exec without its outcome"))
    }

    /// A pod as the daemon serves it.
    pub fn pod(&self, namespace: &str, name: &str) -> Result<PodObject> {
        let body = self.call(
            "GET",
            &format!("/api/v1/namespaces/{namespace}/pods/{name}"),
        )?;
        pod_object(&body)
    }

    /// Every pod of every namespace, by namespace and name.
    pub fn pods(&self) -> Result<Vec<PodObject>> {
        let list: Value = serde_json::from_slice(&self.call("GET", "/api/v1/pods")?)?;
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| pod_object(item.to_string().as_bytes()))
            .collect()
    }
}

/// A pod document from the API (its `nodeName`, `resourceVersion` and
/// all) as the library reads it.
fn pod_object(body: &[u8]) -> Result<PodObject> {
    serde_json::from_slice(body).context("the daemon sent a pod wasipod cannot read")
}

/// Whether an error means nothing answers at the address (no daemon).
fn is_unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::AddrNotAvailable
            )
        })
    })
}

/// `https://HOST:PORT` (HOST may be `[v6]`).
fn host_port(server: &str) -> Option<(String, u16)> {
    let rest = server.strip_prefix("https://")?.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// A query string value, percent-encoded.
pub(crate) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_query_values() {
        assert_eq!(
            host_port("https://127.0.0.1:6443"),
            Some(("127.0.0.1".into(), 6443))
        );
        assert_eq!(host_port("https://[::1]:6443/"), Some(("::1".into(), 6443)));
        assert_eq!(host_port("http://127.0.0.1:6443"), None);
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}

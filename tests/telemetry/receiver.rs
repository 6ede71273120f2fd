//! The OTLP/HTTP receiver of the trace tests: an HTTP server (hyper) on an ephemeral port that
//! takes `POST /v1/traces` with `application/x-protobuf`, decodes it with the official protobuf
//! definitions (`opentelemetry-proto`) and keeps the spans; or one that accepts connections and
//! never answers, a collector that hangs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// A span as the receiver got it (ids in hex).
#[derive(Debug, Clone)]
pub struct Got {
    pub name: String,
    pub trace: String,
    pub id: String,
    pub parent: String,
    pub service: String,
}

/// The OTLP/HTTP receiver: every span it was sent, and how many connections it accepted.
pub struct Receiver {
    pub addr: SocketAddr,
    pub spans: Arc<Mutex<Vec<Got>>>,
    pub connections: Arc<AtomicUsize>,
    /// Requests that were not `POST /v1/traces` with `application/x-protobuf`.
    pub refused: Arc<Mutex<Vec<String>>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Receiver {
    /// Listens on an ephemeral port; `answer` false: accepts connections and never answers (a
    /// collector that hangs).
    pub async fn start(answer: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let (s, c, r) = (spans.clone(), connections.clone(), refused.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                if !answer {
                    held.push(stream);
                    continue;
                }
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (s, r) = (s.clone(), r.clone());
                        async move { Ok::<_, std::convert::Infallible>(receive(req, &s, &r).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            spans,
            connections,
            refused,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<Got> {
        self.spans.lock().unwrap().clone()
    }
}

/// Decodes one export request into `spans`.
async fn receive(
    req: http::Request<hyper::body::Incoming>,
    spans: &Mutex<Vec<Got>>,
    refused: &Mutex<Vec<String>>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let what = format!("{} {} {content_type}", req.method(), req.uri().path());
    let ok = req.method() == http::Method::POST
        && req.uri().path() == "/v1/traces"
        && content_type == "application/x-protobuf";
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let decoded = ExportTraceServiceRequest::decode(body);
    let status = match decoded {
        Ok(export) if ok => {
            let mut spans = spans.lock().unwrap();
            for resource in export.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| r.attributes.iter())
                    .find(|a| a.key == "service.name")
                    .and_then(|a| a.value.as_ref())
                    .and_then(|v| match &v.value {
                        Some(
                            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                                s,
                            ),
                        ) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        spans.push(Got {
                            name: span.name,
                            trace: hex(&span.trace_id),
                            id: hex(&span.span_id),
                            parent: hex(&span.parent_span_id),
                            service: service.clone(),
                        });
                    }
                }
            }
            200
        }
        _ => {
            refused.lock().unwrap().push(what);
            400
        }
    };
    http::Response::builder()
        .status(status)
        .header("content-type", "application/x-protobuf")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap()
}

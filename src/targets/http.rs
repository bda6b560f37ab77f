//! One HTTP conversation with an asset system, shared by every target, on the crate's HTTP
//! layer.
//!
//! Every request goes out signed the way the config says (bearer, a custom header, basic),
//! on the shared client (time limit, no redirects), when the target's one [`Pacer`] says
//! its turn has come (at the config's `rate_limit`, else the API description's default,
//! then at what the target's answers say of its limits), is counted in [`TargetStats`],
//! and has its answer read within a size limit. Throttling, the 5xx a target's [`Dialect`] names,
//! timeouts and broken connections are transient: [`Http::send`] sends a request again
//! through the shared retry loop, honouring `Retry-After`. A request that must not simply
//! be sent again goes out with [`Http::send_once`], or, when it creates something that can
//! be looked for, with [`Http::create`], which looks before it sends again. No error ever
//! carries a credential: answers are scrubbed of them before they are quoted.
//!
//! What differs between targets (media types, how an error answer is quoted, how giving up
//! is worded) is the target's [`Dialect`]; what its answers mean stays in the target.

use std::future::Future;
use std::time::Duration;

use reqwest::Method;
use reqwest::header;
use serde_json::Value as Json;
use url::Url;

use super::signin::{SessionSpec, SignIn, Signed, credentials};
use super::{TargetError, TargetStats};
use crate::config::TargetConfig;
use crate::diag::shorten;
use crate::http::{
    self as shared, Admit, BodyError, Breaker, Exchange, Pacer, Rate, RetryOn, RetryPolicy, Step,
    Transient,
};
use crate::secrets::Redactor;

/// The largest answer read; anything longer is refused rather than held in memory.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// The retry settings of a target's config.
pub(crate) fn policy_of(config: &TargetConfig) -> RetryPolicy {
    RetryPolicy {
        max_attempts: config.max_attempts.max(1),
        timeout: config.request_timeout,
        ..RetryPolicy::default()
    }
}

/// How one kind of target speaks HTTP.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// The `Accept` header of every request.
    pub accept: &'static str,
    /// The `Content-Type` of every body.
    pub content_type: &'static str,
    /// The statuses worth trying again (besides timeouts and broken connections).
    pub transient: &'static [u16],
    /// What an answer's body says, shortened for a message, without credentials.
    pub quote: fn(&Http, &[u8]) -> String,
    /// The message after the last try of `what` failed:
    /// `(target, what, attempts, last failure)`.
    pub gave_up: fn(&str, &str, u32, &str) -> String,
}

/// An answer that trying again would not change, whatever its status.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    /// The `Content-Range` header, if any (`0-49/1234`).
    pub content_range: Option<String>,
    /// The URL the answer came from, for messages.
    pub url: Option<Url>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One request to a target.
#[derive(Debug, Clone)]
pub(crate) struct Request<'a> {
    /// The method.
    pub method: Method,
    /// Where it goes.
    pub url: &'a Url,
    /// The JSON body, if any.
    pub body: Option<&'a Json>,
    /// The ETag to send as `If-Match`, if any.
    pub if_match: Option<&'a str>,
    /// The request in errors, e.g. `PATCH /Users/{id}`.
    pub what: &'a str,
}

/// What a create came to.
#[derive(Debug)]
pub(crate) enum Created<T> {
    /// The server's answer to the create, whatever its status.
    Answer(Reply),
    /// What the lookup found after an attempt whose answer was lost.
    Found(T),
}

/// An authenticated HTTP client for one target.
#[derive(Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
    /// The URL requests are made below.
    base: Url,
    /// How requests are signed: a fixed header, an access token or a session.
    signin: SignIn,
    /// Scrubs the credentials from anything quoted back.
    redactor: Redactor,
    dialect: &'static Dialect,
    /// The retry policy.
    policy: RetryPolicy,
    /// The requests made so far.
    pub stats: TargetStats,
    /// What the target is, for messages (`SCIM at https://…`).
    name: String,
    /// Gives up on a target that stopped answering, for every request of the run at once.
    breaker: Breaker,
    /// When each request may go, for every request of the run at once.
    pacer: Pacer,
}

impl Http {
    /// A client for the target in `config`, making requests below `base`; `name` says what
    /// the target is in messages. Requests go at most at the config's `rate_limit`, else at
    /// the `vendor`'s default limit, else as fast as the target's answers allow.
    pub fn new(
        config: &TargetConfig,
        policy: RetryPolicy,
        name: String,
        base: Url,
        dialect: &'static Dialect,
        vendor: Option<Rate>,
    ) -> Result<Http, TargetError> {
        Self::with_session(config, policy, name, base, (dialect, vendor), None)
    }

    /// Like [`Http::new`], with the session `auth = session` opens, as the target's API
    /// description says.
    pub fn with_session(
        config: &TargetConfig,
        policy: RetryPolicy,
        name: String,
        base: Url,
        (dialect, vendor): (&'static Dialect, Option<Rate>),
        session: Option<SessionSpec>,
    ) -> Result<Http, TargetError> {
        let setup = |detail: String| TargetError::Unsupported(format!("{name}: {detail}"));
        let (signing, redactor) = credentials(config, session, setup)?;
        let client = shared::client(policy.timeout).map_err(|e| setup(e.to_string()))?;
        Ok(Http {
            client,
            base,
            signin: SignIn::new(signing, name.clone()),
            redactor,
            dialect,
            breaker: Breaker::new(&policy),
            pacer: Pacer::new(config.rate_limit, vendor, policy.max_delay),
            policy,
            stats: TargetStats::default(),
            name,
        })
    }

    /// What the target is, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL requests are made below.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The rate requests go at now, when one is known.
    pub fn rate(&self) -> Option<Rate> {
        self.pacer.rate()
    }

    /// Returns when the next request to the target may go (see [`Pacer`]).
    pub async fn turn(&self) {
        self.pacer.wait().await;
    }

    /// The URL a rendered template or a followed link names: a path (with its query) below
    /// the base, or an absolute URL that must stay on the target's origin so an answer
    /// cannot send our credentials elsewhere.
    pub fn url(&self, written: &str) -> Result<Url, TargetError> {
        let written = written.trim();
        if written.starts_with("http://") || written.starts_with("https://") {
            return match Url::parse(written) {
                Ok(url) if url.origin() == self.base.origin() => Ok(url),
                _ => Err(TargetError::Malformed(format!(
                    "a link points away from {}: {}",
                    self.base,
                    self.scrub(&shorten(written, 80))
                ))),
            };
        }
        let base = self.base.as_str().trim_end_matches('/');
        let joined = format!("{base}/{}", written.trim_start_matches('/'));
        Url::parse(&joined).map_err(|e| {
            TargetError::Malformed(format!("not a usable URL ({e}): {}", shorten(&joined, 120)))
        })
    }

    /// A link an answer gives (a next page): resolved against the URL it came from, and
    /// kept on the target's origin.
    pub fn follow(&self, from: &Url, link: &str) -> Result<Url, TargetError> {
        let resolved = from.join(link.trim()).map_err(|e| {
            TargetError::Malformed(format!(
                "not a usable link ({e}): {}",
                self.scrub(&shorten(link, 80))
            ))
        })?;
        self.url(resolved.as_str())
    }

    /// Sends a request that may be repeated (GET, PUT, PATCH, DELETE, or a POST that is safe
    /// to repeat) until an answer comes that trying again would not change, or the tries run
    /// out. `what` names the request in errors.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Json>,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Reply, TargetError> {
        let request = Request {
            method,
            url,
            body,
            if_match,
            what,
        };
        self.run(&mut Sending::new(self, request, true)).await
    }

    /// Sends a request that must not simply be sent again (a POST that creates, with
    /// nothing to look for): a transient failure is final.
    pub async fn send_once(&self, request: Request<'_>) -> Result<Reply, TargetError> {
        self.run(&mut Sending::new(self, request, false)).await
    }

    /// Sends a request that creates something (a POST). The first attempt may have been
    /// carried out although its answer was lost, so before each further attempt `look`
    /// is asked for what it would have made; what it finds ends the request. Without
    /// `look` there is nothing to look for, and a transient failure is final.
    pub async fn create<T, F, Fut>(
        &self,
        request: Request<'_>,
        look: Option<F>,
    ) -> Result<Created<T>, TargetError>
    where
        F: FnMut(&Transient) -> Fut + Send,
        Fut: Future<Output = Result<Option<T>, TargetError>> + Send,
        T: Send,
    {
        let repeat = look.is_some();
        let mut creating = Creating {
            sending: Sending::new(self, request, repeat),
            look,
        };
        self.run(&mut creating).await
    }

    /// Drives `exchange` through the shared retry loop with this target's policy.
    pub async fn run<X>(&self, exchange: &mut X) -> Result<X::Output, TargetError>
    where
        X: Exchange<Error = TargetError>,
    {
        shared::run(&self.policy, exchange).await
    }

    /// Counts a retry and says that one is coming: after try `attempt` of `what` failed with
    /// `last`, the next goes out in `delay`.
    pub fn waiting(&self, what: &str, attempt: u32, last: &Transient, delay: Duration) {
        self.stats
            .retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            target_name = %self.name, request = what, attempt, failure = last.detail.as_str(),
            "target: trying again in {:.1} s", delay.as_secs_f64()
        );
    }

    /// The error after the last of `attempts` tries of `what` failed with `last`.
    pub fn gave_up(&self, what: &str, attempts: u32, last: &str) -> TargetError {
        TargetError::Unavailable((self.dialect.gave_up)(&self.name, what, attempts, last))
    }

    /// One attempt at `request`, its turn taken by the caller ([`Http::turn`]), unless the
    /// target stopped answering (see [`Breaker`]): an answer to a write, of any status,
    /// tells the breaker the target is up; a transient failure of any request that it
    /// failed again.
    pub async fn attempt(&self, request: &Request<'_>) -> Step<Reply, TargetError> {
        if let Admit::Refuse(failures) = self.breaker.admit().await {
            return Step::Done(Err(TargetError::Down {
                target: self.name.clone(),
                failures,
            }));
        }
        let step = self.signed_attempt(request).await;
        // Only a write's answer shows the target can write again: a target whose reads
        // work while every write fails is down for this run's purpose.
        let write = request.method != Method::GET && request.method != Method::HEAD;
        match &step {
            // A 429 is the target answering: it counts for nothing here.
            Step::Retry(last) if !last.throttled => self.breaker.failed(),
            Step::Done(Ok(_)) if write => self.breaker.answered(),
            Step::Retry(_) | Step::Done(_) | Step::Again => {}
        }
        step
    }

    /// One attempt, signed; when the answer says the credential expired, it is renewed
    /// and the request sent once more. Refused again, the sign-in is lost.
    async fn signed_attempt(&self, request: &Request<'_>) -> Step<Reply, TargetError> {
        let signed = match self.signin.signed(&self.client, &self.stats).await {
            Ok(signed) => signed,
            Err(e) => return Step::Done(Err(e)),
        };
        let step = self.attempt_once(request, &signed).await;
        let Step::Done(Ok(reply)) = &step else {
            return step;
        };
        if !self.signin.expired(reply.status, &reply.body) {
            return step;
        }
        tracing::info!(target_name = %self.name, status = reply.status, "target: signing in again");
        self.signin.forget(signed.generation).await;
        let signed = match self.signin.signed(&self.client, &self.stats).await {
            Ok(signed) => signed,
            Err(e) => return Step::Done(Err(e)),
        };
        let step = self.attempt_once(request, &signed).await;
        match step {
            Step::Done(Ok(reply)) if self.signin.expired(reply.status, &reply.body) => {
                Step::Done(Err(self.signin.refused_after_renewal(reply.status)))
            }
            other => other,
        }
    }

    /// Closes the target's session, if it signed in with one (the logout request).
    pub async fn close(&self) {
        self.signin.close(&self.client, &self.stats).await;
    }

    async fn attempt_once(
        &self,
        request: &Request<'_>,
        signed: &Signed,
    ) -> Step<Reply, TargetError> {
        let method = &request.method;
        self.stats
            .count(method != Method::GET && method != Method::HEAD);
        let mut builder = self
            .client
            .request(method.clone(), request.url.clone())
            .header(header::ACCEPT, self.dialect.accept);
        for (name, value) in &signed.headers {
            builder = builder.header(name, value.clone());
        }
        if let Some(etag) = request.if_match {
            builder = builder.header(header::IF_MATCH, etag);
        }
        if let Some(body) = request.body {
            builder = builder
                .header(header::CONTENT_TYPE, self.dialect.content_type)
                .body(body.to_string());
        }
        let sent = std::time::Instant::now();
        let mut response = match builder.send().await {
            Ok(response) => response,
            // A request that cannot even be built fails the same way every time.
            Err(e) if e.is_builder() => {
                let what = request.what;
                return Step::Done(Err(TargetError::Malformed(format!(
                    "{what}: {}",
                    shared::describe(&e)
                ))));
            }
            Err(e) => return Step::Retry(self.transient(shared::describe(&e), None, false)),
        };
        let status = response.status().as_u16();
        self.pacer.observe(status, response.headers());
        tracing::trace!(
            %method, url = %self.scrub(request.url.as_str()), status,
            ms = sent.elapsed().as_millis() as u64, "target request"
        );
        let etag = shared::header(&response, header::ETAG.as_str());
        let content_range = shared::header(&response, header::CONTENT_RANGE.as_str());
        let retry_after = shared::retry_after(response.headers());
        let body = match shared::read_body(&mut response, MAX_ANSWER_BYTES, |_| {}).await {
            Ok(body) => body,
            Err(too_long @ BodyError::TooLong(_)) => {
                let what = request.what;
                return Step::Done(Err(TargetError::Malformed(format!("{what}: {too_long}"))));
            }
            Err(broken @ BodyError::Broken(_)) => {
                return Step::Retry(self.transient(broken.to_string(), None, false));
            }
        };
        if RetryOn::Statuses(self.dialect.transient).covers(status) {
            let detail = format!("HTTP {status}: {}", self.quote(&body));
            return Step::Retry(self.transient(detail, retry_after, status == 429));
        }
        Step::Done(Ok(Reply {
            status,
            etag,
            content_range,
            url: Some(request.url.clone()),
            body,
        }))
    }

    fn transient(
        &self,
        detail: String,
        retry_after: Option<Duration>,
        throttled: bool,
    ) -> Transient {
        Transient {
            detail: self.scrub(&detail),
            retry_after,
            throttled,
            request_id: None,
        }
    }

    /// The error for an answer that is not a success: refused credentials (401, 403) stop
    /// the run, any other status refuses this request.
    pub fn refusal(&self, status: u16, detail: String) -> TargetError {
        match status {
            401 | 403 => TargetError::Unauthorized {
                target: self.name.clone(),
                status,
                detail,
            },
            _ => TargetError::Rejected { status, detail },
        }
    }

    /// What an answer said, in the target's words, shortened and without credentials.
    pub fn quote(&self, body: &[u8]) -> String {
        (self.dialect.quote)(self, body)
    }

    /// `text` with every credential replaced (a server may echo a header it refused).
    pub fn scrub(&self, text: &str) -> String {
        self.redactor.scrub(text)
    }
}

/// When `body` is an HTML page rather than JSON: its title as ` (title: …)`, or nothing
/// when it has none.
pub(crate) fn html_title(body: &[u8]) -> Option<String> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = String::from_utf8_lossy(&body[start..body.len().min(start + 4096)]);
    let lower = head.to_ascii_lowercase();
    if !(lower.starts_with("<!doctype html") || lower.starts_with("<html")) {
        return None;
    }
    let title = lower
        .find("<title>")
        .and_then(|at| {
            let from = at + "<title>".len();
            let to = from + lower[from..].find("</title>")?;
            head.get(from..to)
        })
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty());
    Some(title.map_or_else(String::new, |t| format!(" (title: {})", shorten(&t, 80))))
}

/// One request to the target, as the retry loop sends it.
struct Sending<'a> {
    http: &'a Http,
    request: Request<'a>,
    /// Whether a transient failure may be followed by another try.
    repeat: bool,
}

impl<'a> Sending<'a> {
    fn new(http: &'a Http, request: Request<'a>, repeat: bool) -> Sending<'a> {
        Sending {
            http,
            request,
            repeat,
        }
    }
}

impl Exchange for Sending<'_> {
    type Output = Reply;
    type Error = TargetError;

    async fn turn(&self) {
        self.http.turn().await;
    }

    async fn attempt(&mut self) -> Step<Reply, TargetError> {
        self.http.attempt(&self.request).await
    }

    fn gave_up(&self, attempts: u32, last: Transient) -> TargetError {
        self.http.gave_up(self.request.what, attempts, &last.detail)
    }

    fn repeatable(&self) -> bool {
        self.repeat
    }

    fn meter(&self) -> Option<&crate::http::Meter> {
        Some(&self.http.stats.meter)
    }

    fn waiting(&self, attempt: u32, last: &Transient, delay: Duration) {
        self.http.waiting(self.request.what, attempt, last, delay);
    }
}

/// A create, as the retry loop sends it: before it goes out again, `look` says whether the
/// last attempt was carried out after all.
struct Creating<'a, F> {
    sending: Sending<'a>,
    look: Option<F>,
}

impl<T, F, Fut> Exchange for Creating<'_, F>
where
    F: FnMut(&Transient) -> Fut + Send,
    Fut: Future<Output = Result<Option<T>, TargetError>> + Send,
    T: Send,
{
    type Output = Created<T>;
    type Error = TargetError;

    fn turn(&self) -> impl Future<Output = ()> + Send {
        // Only the client is held while waiting, not the lookup (which need not be `Sync`).
        let http = self.sending.http;
        async move { http.turn().await }
    }

    async fn attempt(&mut self) -> Step<Created<T>, TargetError> {
        self.sending.attempt().await.map(Created::Answer)
    }

    fn gave_up(&self, attempts: u32, last: Transient) -> TargetError {
        self.sending.gave_up(attempts, last)
    }

    fn repeatable(&self) -> bool {
        self.sending.repeatable()
    }

    fn meter(&self) -> Option<&crate::http::Meter> {
        self.sending.meter()
    }

    fn waiting(&self, attempt: u32, last: &Transient, delay: Duration) {
        self.sending.waiting(attempt, last, delay);
    }

    async fn before_resend(&mut self, last: &Transient) -> Result<Option<Created<T>>, TargetError> {
        match &mut self.look {
            // A 429 says nothing was made: there is nothing to look for.
            Some(look) if !last.throttled => Ok(look(last).await?.map(Created::Found)),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{Secret, TargetAuth, TargetKind};

    const PLAIN: Dialect = Dialect {
        accept: "application/json",
        content_type: "application/json",
        transient: &[429, 503],
        quote: |http, body| http.scrub(&String::from_utf8_lossy(body)),
        gave_up: |target, what, attempts, last| format!("{target}: {what}: {attempts}: {last}"),
    };

    /// A SCIM target's config at `https://assets.example.com/scim/v2`.
    pub(crate) fn config(auth: TargetAuth, token: Option<&str>) -> TargetConfig {
        TargetConfig {
            kind: TargetKind::Scim,
            url: Url::parse("https://assets.example.com/scim/v2").unwrap(),
            token: token.map(Secret::literal),
            sync_field: None,
            auth,
            api: None,
            page_size: 100,
            list: true,
            batch_size: 500,
            max_attempts: 3,
            request_timeout: Duration::from_secs(5),
            rate_limit: None,
        }
    }

    fn http(auth: TargetAuth, token: Option<&str>) -> Result<Http, TargetError> {
        let config = config(auth, token);
        let base = config.url.clone();
        Http::new(
            &config,
            policy_of(&config),
            "test".into(),
            base,
            &PLAIN,
            None,
        )
    }

    fn credentials(auth: TargetAuth, token: Option<&str>) -> Option<(String, String)> {
        http(auth, token)
            .unwrap()
            .signin
            .fixed()
            .map(|(name, value)| {
                assert!(value.is_sensitive());
                (name.to_string(), value.to_str().unwrap().to_owned())
            })
    }

    #[test]
    fn credentials_follow_the_auth_setting() {
        assert_eq!(
            credentials(TargetAuth::Bearer, Some("t0ken")),
            Some(("authorization".into(), "Bearer t0ken".into()))
        );
        assert_eq!(credentials(TargetAuth::Bearer, None), None);
        let basic = TargetAuth::Basic {
            username: "svc".into(),
            password: Secret::literal("pa:ss"),
        };
        assert_eq!(
            credentials(basic, None),
            Some(("authorization".into(), "Basic c3ZjOnBhOnNz".into()))
        );
        // An API key as the user name, `X` as the password: base64 of `k3y:X`.
        assert_eq!(
            credentials(TargetAuth::BasicToken, Some("k3y")),
            Some(("authorization".into(), "Basic azN5Olg=".into()))
        );
        assert!(http(TargetAuth::BasicToken, None).is_err());
        let header = TargetAuth::Header("X-API-Key".into());
        assert_eq!(
            credentials(header.clone(), Some("k3y")),
            Some(("x-api-key".into(), "k3y".into()))
        );
        assert_eq!(credentials(header, None), None);
        let bad = TargetAuth::Header("Bad Header".into());
        assert!(http(bad, Some("k")).is_err());
    }

    #[test]
    fn every_credential_is_scrubbed() {
        let basic = TargetAuth::Basic {
            username: "svc".into(),
            password: Secret::literal("pa:ss"),
        };
        let http = http(basic, Some("t0ken")).unwrap();
        assert_eq!(
            http.scrub("t0ken pa:ss c3ZjOnBhOnNz ok"),
            "[redacted] [redacted] [redacted] ok"
        );
    }

    #[tokio::test]
    async fn a_request_that_cannot_be_built_is_not_tried_again() {
        // Longer than any URI the HTTP stack accepts: building it fails, every time.
        let http = http(TargetAuth::Bearer, Some("t")).unwrap();
        // Loopback, so that even a build that succeeded could reach nothing else.
        let url = Url::parse(&format!("http://127.0.0.1:1/{}", "a".repeat(70_000))).unwrap();
        let error = http
            .send(Method::GET, &url, None, None, "GET /long")
            .await
            .unwrap_err();
        assert!(matches!(error, TargetError::Malformed(_)), "{error}");
        assert_eq!(
            http.stats
                .requests
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }
}

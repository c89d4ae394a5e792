//! A browser without JavaScript: it posts forms with the page's CSRF token, sees redirects
//! instead of following them, and keeps the one cookie that matters by hand.

use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};

use crate::helpers::TestApp;

const COOKIE_NAME: &str = "expense_tracker_session";

/// The `Location` of a redirect.
pub fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The value of the first `csrf_token` field of a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf_token\" value=\"")? + "name=\"csrf_token\" value=\"".len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_owned())
}

pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
    /// The token of the current session, read from a page; forgotten when the session
    /// changes (sign-in, sign-out).
    csrf: Option<String>,
}

impl Browser {
    pub fn on(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client"),
            base: app.address.clone(),
            cookie: None,
            csrf: None,
        }
    }

    fn remember(&mut self, response: &reqwest::Response) {
        for header in response.headers().get_all(SET_COOKIE) {
            let header = header.to_str().expect("ascii");
            if let Some(value) = header
                .split(';')
                .next()
                .and_then(|pair| pair.strip_prefix(&format!("{COOKIE_NAME}=")))
            {
                let cookie =
                    (!value.is_empty() && !header.contains("Max-Age=0")).then(|| value.to_owned());
                if cookie != self.cookie {
                    self.csrf = None;
                }
                self.cookie = cookie;
            }
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, format!("{COOKIE_NAME}={cookie}"));
        }
        request
    }

    /// The session's CSRF token, from a page every visitor may open.
    pub async fn csrf(&mut self) -> String {
        if let Some(token) = &self.csrf {
            return token.clone();
        }
        let page = self
            .request(Method::GET, "/forgot-password")
            .send()
            .await
            .expect("answered");
        self.remember(&page);
        let token = csrf_in(&page.text().await.expect("html")).expect("a csrf_token field");
        self.csrf = Some(token.clone());
        token
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let response = self
            .request(Method::GET, path)
            .send()
            .await
            .expect("answered");
        self.remember(&response);
        response
    }

    /// The page's HTML, asserting it answered 200.
    pub async fn page(&mut self, path: &str) -> String {
        let response = self.get(path).await;
        let status = response.status();
        let html = response.text().await.expect("html");
        assert_eq!(status, StatusCode::OK, "GET {path}: {html}");
        html
    }

    async fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> reqwest::Response {
        let token = self.csrf().await;
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.push(("csrf_token", &token));
        let mut request = self.request(Method::POST, path).form(&fields);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        let response = request.send().await.expect("answered");
        self.remember(&response);
        response
    }

    /// Posts a form as the page would: with the session's CSRF token.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_form(path, form, None).await
    }

    pub async fn post_with_origin(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: &str,
    ) -> reqwest::Response {
        self.post_form(path, form, Some(origin)).await
    }

    /// Posts a multipart form (with a file) as the page would.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        file: Option<(&str, Vec<u8>)>,
    ) -> reqwest::Response {
        let token = self.csrf().await;
        let mut multipart = reqwest::multipart::Form::new().text("csrf_token", token);
        for (name, value) in form {
            multipart = multipart.text((*name).to_owned(), (*value).to_owned());
        }
        if let Some((name, bytes)) = file {
            multipart = multipart.part(
                name.to_owned(),
                reqwest::multipart::Part::bytes(bytes).file_name("receipt"),
            );
        }
        let response = self
            .request(Method::POST, path)
            .multipart(multipart)
            .send()
            .await
            .expect("answered");
        self.remember(&response);
        response
    }

    /// Posts a form without any CSRF token, as a forged one would come.
    pub async fn post_without_token(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let response = self
            .request(Method::POST, path)
            .form(form)
            .send()
            .await
            .expect("answered");
        self.remember(&response);
        response
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> reqwest::Response {
        self.post("/login", &[("email", email), ("password", password)])
            .await
    }

    /// Whether the start page sends this browser to a role's home rather than to sign in.
    pub async fn is_signed_in(&mut self) -> bool {
        let home = self.get("/").await;
        home.status() == StatusCode::SEE_OTHER && !location(&home).starts_with("/login")
    }

    /// Follows a form's redirect and returns the page it leads to.
    pub async fn follow(&mut self, response: reqwest::Response) -> String {
        let status = response.status();
        let to = location(&response).to_owned();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::SEE_OTHER,
            "expected a redirect, got: {body}"
        );
        self.page(&to).await
    }
}

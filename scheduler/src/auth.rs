//! Who may call which route: each route needs a role, and a token limited
//! to one app reaches only routes that name that app or that narrow their
//! answer to it. Pure; the API's middleware (`api::authn`) finds the
//! caller and asks here.

pub(crate) mod tokens;

use atoll_sdk::auth::Role;
use axum::http::Method;

/// Whoever presented a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The token's id (`admin` for the cluster's admin token).
    pub id: String,
    pub role: Role,
    /// The one app it may touch, if limited.
    pub app: Option<String>,
}

impl Caller {
    /// Everyone, on a server started with `--insecure`.
    pub(crate) fn insecure() -> Caller {
        Caller {
            id: "insecure".into(),
            role: Role::Admin,
            app: None,
        }
    }

    /// Whether this caller may see or change `app`.
    pub(crate) fn may_touch(&self, app: &str) -> bool {
        self.app.as_deref().is_none_or(|a| a == app)
    }
}

/// How a route relates to apps, for tokens limited to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// It names the app in its path (`/v1/apps/{name}`, `/v1/logs/{app}`).
    Path,
    /// Its handler narrows its answer, or checks the app it is given.
    Narrowed,
    /// Cluster-wide: not for a token limited to an app.
    Cluster,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Open to anyone (the health check).
    Nothing,
    Role(Role, Scope),
}

/// What route `route` (the router's template) with `method` needs. A
/// route not listed needs `admin`: a new route is closed until listed.
pub(crate) fn need(method: &Method, route: &str) -> Need {
    use Role::*;
    use Scope::*;
    let get = method == Method::GET || method == Method::HEAD;
    let (role, scope) = match route {
        "/v1/health" | "/healthz" => return Need::Nothing,
        "/v1/apps" if get => (Read, Narrowed),
        "/v1/apps" => (Deploy, Narrowed),
        "/v1/apps/{name}" | "/v1/apps/{name}/history" if get => (Read, Path),
        // The stored spec holds the environment's values: as deploying.
        "/v1/apps/{name}/spec" if get => (Deploy, Path),
        "/v1/apps/{name}"
        | "/v1/apps/{name}/rollback"
        | "/v1/apps/{name}/promote/{service}"
        | "/v1/apps/{name}/scale"
        | "/v1/apps/{name}/restart"
        | "/v1/apps/{name}/stop"
        | "/v1/apps/{name}/start" => (Deploy, Path),
        "/v1/instances" if get => (Read, Narrowed),
        // Any valid token, an app's too: it says nothing about apps.
        "/v1/version" if get => (Read, Narrowed),
        // The handler checks the instance's app.
        "/v1/instances/{id}/exec" if method == Method::POST || get => (Deploy, Narrowed),
        "/v1/hosts" | "/v1/servers" | "/v1/events" | "/v1/top" | "/metrics" if get => {
            (Read, Cluster)
        }
        "/v1/logs/{app}" | "/v1/logs/{app}/{service}" if get => (Read, Path),
        "/v1/join" if method == Method::POST => (Host, Cluster),
        // Content-addressed: uploading one gives nothing to anyone.
        "/v1/artifacts/{digest}" => (Deploy, Narrowed),
        _ => (Admin, Cluster),
    };
    Need::Role(role, scope)
}

/// The app a request's path names (`/v1/apps/NAME/...`, `/v1/logs/APP/...`).
pub(crate) fn path_app(path: &str) -> Option<&str> {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some("apps" | "logs"), Some(app)) if !app.is_empty() => Some(app),
        _ => None,
    }
}

/// Why a caller may not: a 403 that says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Denied(pub String);

/// Whether `caller` may call a route that needs `need`, whose path names
/// `app` (if it does).
pub(crate) fn authorize(caller: &Caller, need: Need, app: Option<&str>) -> Result<(), Denied> {
    let Need::Role(role, scope) = need else {
        return Ok(());
    };
    if !caller.role.covers(role) {
        return Err(Denied(format!(
            "token {} has role {}; this needs {role}",
            caller.id, caller.role
        )));
    }
    let Some(limit) = &caller.app else {
        return Ok(());
    };
    match (scope, app) {
        (Scope::Narrowed, _) => Ok(()),
        (Scope::Path, Some(app)) if app == limit => Ok(()),
        (Scope::Path, Some(app)) => Err(Denied(format!(
            "token {} is limited to app {limit}, not {app}",
            caller.id
        ))),
        _ => Err(Denied(format!(
            "token {} is limited to app {limit}; this is cluster-wide",
            caller.id
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, app: Option<&str>) -> Caller {
        Caller {
            id: "t1".into(),
            role,
            app: app.map(str::to_string),
        }
    }

    fn may(c: &Caller, method: Method, path: &str, route: &str) -> Result<(), Denied> {
        authorize(c, need(&method, route), path_app(path))
    }

    #[test]
    fn read_tokens_read_and_nothing_more() {
        let r = caller(Role::Read, None);
        assert!(may(&r, Method::GET, "/v1/instances", "/v1/instances").is_ok());
        assert!(may(&r, Method::GET, "/v1/apps/a", "/v1/apps/{name}").is_ok());
        assert!(may(&r, Method::GET, "/metrics", "/metrics").is_ok());
        let e = may(&r, Method::POST, "/v1/apps", "/v1/apps").unwrap_err();
        assert_eq!(e.0, "token t1 has role read; this needs deploy");
        assert!(may(&r, Method::DELETE, "/v1/apps/a", "/v1/apps/{name}").is_err());
        assert!(may(&r, Method::GET, "/v1/export", "/v1/export").is_err());
        assert!(may(&r, Method::GET, "/v1/tokens", "/v1/tokens").is_err());
    }

    #[test]
    fn deploy_tokens_deploy_but_do_not_administer() {
        let d = caller(Role::Deploy, None);
        assert!(may(&d, Method::POST, "/v1/apps", "/v1/apps").is_ok());
        assert!(
            may(
                &d,
                Method::POST,
                "/v1/apps/a/rollback",
                "/v1/apps/{name}/rollback"
            )
            .is_ok()
        );
        assert!(may(&d, Method::PUT, "/v1/artifacts/x", "/v1/artifacts/{digest}").is_ok());
        assert!(may(&d, Method::POST, "/v1/import", "/v1/import").is_err());
        assert!(may(&d, Method::DELETE, "/v1/hosts/h1", "/v1/hosts/{name}").is_err());
        assert!(may(&d, Method::POST, "/v1/tokens", "/v1/tokens").is_err());
    }

    #[test]
    fn admin_does_everything_and_hosts_only_join() {
        let a = caller(Role::Admin, None);
        assert!(may(&a, Method::POST, "/v1/tokens", "/v1/tokens").is_ok());
        assert!(may(&a, Method::GET, "/v1/export", "/v1/export").is_ok());
        let h = caller(Role::Host, None);
        assert!(may(&h, Method::GET, "/v1/apps", "/v1/apps").is_err());
        assert!(may(&h, Method::GET, "/metrics", "/metrics").is_err());
        assert!(may(&h, Method::POST, "/v1/join", "/v1/join").is_ok());
        assert!(may(&h, Method::POST, "/v1/tokens", "/v1/tokens").is_err());
        let d = caller(Role::Deploy, None);
        assert!(may(&d, Method::POST, "/v1/join", "/v1/join").is_err());
    }

    #[test]
    fn an_app_token_reaches_its_app_only() {
        let d = caller(Role::Deploy, Some("a"));
        assert!(may(&d, Method::DELETE, "/v1/apps/a", "/v1/apps/{name}").is_ok());
        assert!(
            may(
                &d,
                Method::GET,
                "/v1/logs/a/web",
                "/v1/logs/{app}/{service}"
            )
            .is_ok()
        );
        let e = may(&d, Method::DELETE, "/v1/apps/b", "/v1/apps/{name}").unwrap_err();
        assert_eq!(e.0, "token t1 is limited to app a, not b");
        // Narrowed by their handlers (a deploy checks the file's name).
        assert!(may(&d, Method::POST, "/v1/apps", "/v1/apps").is_ok());
        assert!(may(&d, Method::GET, "/v1/instances", "/v1/instances").is_ok());
        let e = may(&d, Method::GET, "/v1/hosts", "/v1/hosts").unwrap_err();
        assert!(e.0.contains("cluster-wide"), "{e}");
    }

    #[test]
    fn the_health_check_is_open_and_unknown_routes_need_admin() {
        let r = caller(Role::Read, None);
        assert_eq!(need(&Method::GET, "/v1/health"), Need::Nothing);
        assert!(may(&r, Method::GET, "/v1/new-thing", "/v1/new-thing").is_err());
        assert!(
            may(
                &caller(Role::Admin, None),
                Method::GET,
                "/v1/new",
                "/v1/new"
            )
            .is_ok()
        );
    }

    #[test]
    fn paths_name_their_app() {
        assert_eq!(path_app("/v1/apps/shop/history"), Some("shop"));
        assert_eq!(path_app("/v1/logs/shop"), Some("shop"));
        assert_eq!(path_app("/v1/apps"), None);
        assert_eq!(path_app("/v1/apps/"), None);
        assert_eq!(path_app("/v1/hosts/h1"), None);
    }
}

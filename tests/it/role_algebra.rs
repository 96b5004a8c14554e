//! The role algebra, property-tested at the service layer (no HTTP): whatever a random
//! principal (random roles, random kind, interactive or not) tries in a random sequence of
//! grants, every success hands out only roles the principal holds, never raises the roles
//! of an existing credential without an interactive login, never mints a secret without
//! one, and never touches a credential holding a role the principal lacks; a refusal leaves
//! the credential's roles as they were. Runs on SQLite, and on PostgreSQL too when
//! TOKEND_TEST_DATABASE_URL is set. A second property checks `intersect`, the rule that
//! decides the roles of every exchanged token.
use crate::common;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::{subsequence, Index};
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use tokend::clock::{Clock, FixedClock};
use tokend::config::Config;
use tokend::service::principals::users::CredentialsChoice;
use tokend::service::{
    self, authz::roles, principals::accounts, principals::apps, principals::users, tokens, Acct, Principal, Role,
    RoleSet,
};
use tokend::store::{AnyConnection, Conn};

// The role algebra under test (`RoleSet`), over plain role lists.
fn holds(roles: &[String], r: &str) -> bool {
    RoleSet::from(roles).holds(r)
}
fn implies(roles: &[String], r: &str) -> bool {
    RoleSet::from(roles).implies(r)
}
fn intersect(wanted: &[String], holder: &[String]) -> Vec<String> {
    RoleSet::from(wanted).intersect(&RoleSet::from(holder)).to_strings()
}

/// The roles of the game: the four organization roles and three custom ones.
const UNIVERSE: [&str; 7] =
    ["org:owner", "org:admin", "org:developer", "org:member", "metrics:read", "billing:write", "alerts:write"];
/// A role the organization's catalogue does not have: never grantable, not even by an owner.
const GHOST: &str = "ghost:role";
const CASES: u32 = 10_000;

fn config() -> ProptestConfig {
    // No regression files: this file is the only artefact of the test.
    ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(CASES) }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Up to `max` roles of the universe, and rarely the uncatalogued one.
fn role_set(max: usize) -> impl Strategy<Value = Vec<String>> {
    (subsequence(UNIVERSE.to_vec(), 0..=max), proptest::bool::weighted(0.05)).prop_map(|(v, ghost)| {
        let mut v = strings(&v);
        if ghost {
            v.push(GHOST.to_string());
        }
        v
    })
}

#[derive(Clone, Debug)]
struct Actor {
    roles: Vec<String>,
    acct: Acct,
    interactive: bool,
}

fn actor() -> impl Strategy<Value = Actor> {
    let acct = prop_oneof![4 => Just(Acct::User), 1 => Just(Acct::ServiceAccount), 1 => Just(Acct::App)];
    (subsequence(UNIVERSE.to_vec(), 0..=UNIVERSE.len()), acct, any::<bool>())
        .prop_map(|(roles, acct, interactive)| Actor { roles: strings(&roles), acct, interactive })
}

#[derive(Clone, Debug)]
enum Op {
    CreateUser { roles: Option<Vec<String>> },
    PatchUser { target: Index, roles: Vec<String> },
    CreateSa { roles: Vec<String> },
    PatchSa { target: Index, roles: Vec<String> },
    CreateSaToken { target: Index, roles: Option<Vec<String>> },
    CreateApp { roles: Vec<String>, introspect: bool },
    PatchApp { target: Index, roles: Vec<String> },
    CreatePat { roles: Vec<String> },
}

impl Op {
    fn kind(&self) -> &'static str {
        match self {
            Op::CreateUser { .. } => "create user",
            Op::PatchUser { .. } => "patch user roles",
            Op::CreateSa { .. } => "create service account",
            Op::PatchSa { .. } => "patch service account roles",
            Op::CreateSaToken { .. } => "create service account token",
            Op::CreateApp { .. } => "create app",
            Op::PatchApp { .. } => "patch app roles",
            Op::CreatePat { .. } => "create personal token",
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::option::weighted(0.9, role_set(3)).prop_map(|roles| Op::CreateUser { roles }),
        (any::<Index>(), role_set(3)).prop_map(|(target, roles)| Op::PatchUser { target, roles }),
        role_set(3).prop_map(|roles| Op::CreateSa { roles }),
        (any::<Index>(), role_set(3)).prop_map(|(target, roles)| Op::PatchSa { target, roles }),
        (any::<Index>(), proptest::option::weighted(0.7, role_set(2)))
            .prop_map(|(target, roles)| Op::CreateSaToken { target, roles }),
        (role_set(3), proptest::bool::weighted(0.2))
            .prop_map(|(roles, introspect)| Op::CreateApp { roles, introspect }),
        (any::<Index>(), role_set(3)).prop_map(|(target, roles)| Op::PatchApp { target, roles }),
        role_set(3).prop_map(|roles| Op::CreatePat { roles }),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    User,
    ServiceAccount,
    App,
}

/// One database, one org with the custom roles, pools of targets, and the actors' identities.
struct World {
    _dir: tempfile::TempDir,
    /// On PostgreSQL: the server URL and the test database's name (dropped at the end).
    pg: Option<(String, String)>,
    state: actix_web::web::Data<tokend::app::State>,
    /// The single writer, held for the whole run.
    conn: RefCell<Conn>,
    owner: Principal,
    now: i64,
    /// A real user, service account and app (client id) to act as, by `Acct`.
    actor_user: String,
    actor_sa: String,
    actor_app: String,
    users: RefCell<Vec<String>>,
    sas: RefCell<Vec<String>>,
    apps: RefCell<Vec<String>>,
    n: Cell<u64>,
    /// Per operation kind: (successes, refusals).
    stats: RefCell<BTreeMap<&'static str, (u32, u32)>>,
}

fn principal(org_id: &str, acct: Acct, id: &str, roles: Vec<String>, interactive: bool) -> Principal {
    Principal {
        org_id: org_id.to_string(),
        acct,
        id: id.to_string(),
        roles: roles.into(),
        interactive,
        token_id: None,
        ip: None,
        sid: None,
        jti: "role-algebra".into(),
        exp: 0,
    }
}

/// The starting targets: a spread of role sets, an owner among them.
const SEEDS: [&[&str]; 8] = [
    &[],
    &["org:member"],
    &["org:developer"],
    &["org:admin"],
    &["org:member", "metrics:read"],
    &["org:admin", "billing:write"],
    &["alerts:write", "metrics:read"],
    &["org:owner"],
];

impl World {
    /// On SQLite in a temporary directory, or on a fresh database of the PostgreSQL server
    /// at `pg_base`.
    fn new(pg_base: Option<&str>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let pg = pg_base.map(|base| (base.to_string(), format!("tokend_t_{}", uuid::Uuid::new_v4().simple())));
        let url = match &pg {
            None => format!("sqlite://{}/tokend.db", dir.path().display()),
            Some((base, name)) => {
                use diesel::connection::SimpleConnection;
                use diesel::Connection;
                let mut admin = diesel::PgConnection::establish(base).expect("connect to TOKEND_TEST_DATABASE_URL");
                admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create the test database");
                let (prefix, rest) = base.rsplit_once('/').expect("a database URL with a path");
                let query = rest.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
                format!("{prefix}/{name}{query}")
            }
        };
        let clock = Arc::new(FixedClock::new(common::now()));
        let now = clock.now();
        let (state, created) =
            tokend::boot(Config::for_test(&url, &dir.path().join("keys")), clock as Arc<dyn Clock>).expect("boot");
        let created = created.expect("a fresh database bootstraps an org");
        let mut conn = state.db.write().unwrap();
        // Durability is not under test: let the thousands of small transactions skip the
        // wait for the disk.
        {
            use diesel::connection::SimpleConnection;
            let pragma = if pg.is_some() { "SET synchronous_commit = off" } else { "PRAGMA synchronous = OFF" };
            conn.batch_execute(pragma).unwrap();
        }
        let owner = principal(&created.org_id, Acct::User, &created.owner_id, strings(&["org:owner"]), true);
        let c: &mut AnyConnection = &mut conn;
        for name in &UNIVERSE[4..] {
            let input =
                roles::NewRole { name: name.to_string(), kind: "custom".into(), description: Default::default() };
            roles::create(c, &owner, &input, now).expect("create a custom role");
        }
        // Room for every service-account token the run may mint.
        service::org::policy::update(
            c,
            &state.cfg,
            &owner,
            &serde_json::json!({"max_tokens_per_service_account": 1000}),
            now,
        )
        .expect("raise the token cap");
        let mut w = World {
            _dir: dir,
            pg,
            state: state.clone(),
            conn: RefCell::new(conn),
            owner,
            now,
            actor_user: String::new(),
            actor_sa: String::new(),
            actor_app: String::new(),
            users: RefCell::new(Vec::new()),
            sas: RefCell::new(Vec::new()),
            apps: RefCell::new(Vec::new()),
            n: Cell::new(0),
            stats: RefCell::new(BTreeMap::new()),
        };
        for seed in SEEDS {
            let roles = strings(seed);
            let id = w.create_user(&w.owner, Some(roles.clone())).expect("seed user").id;
            w.users.borrow_mut().push(id);
            let id = w.create_sa(&w.owner, roles.clone()).expect("seed service account").id;
            w.sas.borrow_mut().push(id);
            let id = w.create_app(&w.owner, roles, false).expect("seed app").app.id;
            w.apps.borrow_mut().push(id);
        }
        w.actor_user = w.create_user(&w.owner, Some(strings(&["org:member"]))).unwrap().id;
        w.actor_sa = w.create_sa(&w.owner, vec![]).unwrap().id;
        w.actor_app = w.create_app(&w.owner, vec![], false).unwrap().app.client_id;
        w
    }

    fn next(&self) -> u64 {
        self.n.set(self.n.get() + 1);
        self.n.get()
    }

    fn create_user(&self, p: &Principal, roles: Option<Vec<String>>) -> service::Result<users::UserView> {
        let input =
            users::NewUser { email: format!("u{}@algebra.test", self.next()), name: None, roles, disabled: false };
        users::create(&mut self.conn.borrow_mut(), p, &input, self.now)
    }

    fn create_sa(&self, p: &Principal, roles: Vec<String>) -> service::Result<accounts::AccountView> {
        let input =
            accounts::NewAccount { name: format!("sa-{}", self.next()).try_into().unwrap(), description: None, roles };
        accounts::create(&mut self.conn.borrow_mut(), p, &input, self.now)
    }

    fn create_app(&self, p: &Principal, roles: Vec<String>, introspect: bool) -> service::Result<apps::AppWithSecret> {
        let input = apps::NewApp {
            name: format!("app-{}", self.next()).try_into().unwrap(),
            description: None,
            roles,
            access_token_ttl_seconds: None,
            introspect,
            audiences: None,
            management: None,
        };
        apps::create(&mut self.conn.borrow_mut(), &self.state.cfg, p, &input, self.now)
    }

    fn new_token(&self, roles: Option<Vec<String>>) -> tokens::CreateToken {
        tokens::CreateToken {
            name: format!("t-{}", self.next()).try_into().unwrap(),
            description: None,
            ttl_days: Some(1),
            expires_at: None,
            roles,
            audiences: None,
            management: None,
        }
    }

    fn actor(&self, a: &Actor) -> Principal {
        let id = match a.acct {
            Acct::User => &self.actor_user,
            Acct::ServiceAccount => &self.actor_sa,
            Acct::App => &self.actor_app,
        };
        principal(&self.owner.org_id, a.acct, id, a.roles.clone(), a.interactive)
    }

    /// The roles of a user, service account or app now, read by the owner.
    fn roles_of(&self, kind: Kind, id: &str) -> Vec<String> {
        let c = &mut self.conn.borrow_mut();
        match kind {
            Kind::User => users::get(c, &self.owner, id).expect("the owner reads a user").roles,
            Kind::ServiceAccount => accounts::get(c, &self.owner, id).expect("the owner reads an account").roles,
            Kind::App => apps::get(c, &self.owner, id).expect("the owner reads an app").roles,
        }
    }

    fn pick(pool: &RefCell<Vec<String>>, i: &Index) -> String {
        let pool = pool.borrow();
        pool[i.index(pool.len())].clone()
    }

    /// Runs one operation as `p`; checks the properties on success, and that a refusal is a
    /// refusal (403/404/409/422), not a failure.
    fn apply(&self, p: &Principal, op: &Op) -> Result<(), TestCaseError> {
        let usage = &self.state.usage;
        let now = self.now;
        let interactive = p.interactive && p.acct == Acct::User;
        // (roles granted; the roles of the existing credential acted on, as they were before;
        // whether the operation mints a secret, which needs an interactive login)
        let mut acted_on: Option<(Kind, String, Vec<String>)> = None;
        let outcome: service::Result<(Vec<String>, Option<Vec<String>>, bool)> = match op {
            Op::CreateUser { roles } => self.create_user(p, roles.clone()).map(|v| {
                self.users.borrow_mut().push(v.id);
                (v.roles, None, false)
            }),
            Op::PatchUser { target, roles } => {
                let id = Self::pick(&self.users, target);
                let before = self.roles_of(Kind::User, &id);
                acted_on = Some((Kind::User, id.clone(), before.clone()));
                let input = users::UserPatch { name: None, roles: Some(roles.clone()), disabled: None };
                users::patch(
                    &mut self.conn.borrow_mut(),
                    p,
                    &self.state.notify.sealer,
                    &id,
                    &input,
                    CredentialsChoice::Ask,
                    now,
                )
                .map(|v| (v.roles, Some(before), false))
            }
            Op::CreateSa { roles } => self.create_sa(p, roles.clone()).map(|v| {
                self.sas.borrow_mut().push(v.id);
                (v.roles, None, false)
            }),
            Op::PatchSa { target, roles } => {
                let id = Self::pick(&self.sas, target);
                let before = self.roles_of(Kind::ServiceAccount, &id);
                acted_on = Some((Kind::ServiceAccount, id.clone(), before.clone()));
                let input = accounts::AccountPatch {
                    name: None,
                    description: None,
                    roles: Some(roles.clone()),
                    disabled: None,
                };
                accounts::patch(&mut self.conn.borrow_mut(), p, &id, &input, now)
                    .map(|v| (v.roles, Some(before), false))
            }
            Op::CreateSaToken { target, roles } => {
                let id = Self::pick(&self.sas, target);
                let account = self.roles_of(Kind::ServiceAccount, &id);
                let input = self.new_token(roles.clone());
                accounts::token_create(&mut self.conn.borrow_mut(), &self.state.cfg, p, &id, &input, usage, now)
                    .and_then(|t| {
                        // A token carries only roles its account holds.
                        match t.record.roles.iter().find(|r| !holds(&account, r)) {
                            Some(r) => Err(service::Error::Internal(
                                format!("token role {r} not held by its account {account:?}").into(),
                            )),
                            None => Ok((t.record.roles, Some(account.clone()), true)),
                        }
                    })
            }
            Op::CreateApp { roles, introspect } => self.create_app(p, roles.clone(), *introspect).and_then(|v| {
                self.apps.borrow_mut().push(v.app.id.clone());
                if v.app.introspect && !(p.has(Role::OrgAdmin) && interactive) {
                    return Err(service::Error::Internal("introspect granted without an interactive org:admin".into()));
                }
                Ok((v.app.roles, None, true))
            }),
            Op::PatchApp { target, roles } => {
                let id = Self::pick(&self.apps, target);
                let before = self.roles_of(Kind::App, &id);
                acted_on = Some((Kind::App, id.clone(), before.clone()));
                let input = apps::AppPatch {
                    name: None,
                    description: None,
                    roles: Some(roles.clone()),
                    access_token_ttl_seconds: None,
                    disabled: None,
                    introspect: None,
                    audiences: None,
                    management: None,
                };
                apps::patch(&mut self.conn.borrow_mut(), &self.state.cfg, p, &id, &input, now)
                    .map(|v| (v.roles, Some(before), false))
            }
            Op::CreatePat { roles } => {
                let input = self.new_token(Some(roles.clone()));
                tokens::my_create(&mut self.conn.borrow_mut(), &self.state.cfg, p, &input, usage, now).and_then(|t| {
                    if t.record.roles.is_empty() || p.acct != Acct::User {
                        return Err(service::Error::Internal("a personal token without roles or owner".into()));
                    }
                    Ok((t.record.roles, None, true))
                })
            }
        };
        if outcome.is_err() {
            // A refusal changes nothing.
            if let Some((kind, id, before)) = &acted_on {
                let after = self.roles_of(*kind, id);
                prop_assert_eq!(&after, before, "{:?} by {:?} was refused but changed the roles", op, p);
            }
        }
        let mut stats = self.stats.borrow_mut();
        let entry = stats.entry(op.kind()).or_default();
        match outcome {
            Ok((granted, before, minting)) => {
                entry.0 += 1;
                for r in &granted {
                    prop_assert!(p.roles.holds(r), "{op:?} by {p:?} granted {r}, which the actor does not hold");
                    prop_assert!(r != GHOST, "{op:?} granted the uncatalogued role {r}");
                }
                prop_assert!(!minting || interactive, "{op:?} minted a credential for a non-interactive {p:?}");
                if let Some(before) = before {
                    for r in &before {
                        prop_assert!(p.roles.holds(r), "{op:?} by {p:?} acted on a credential holding {r}");
                    }
                    let raised = granted.iter().any(|r| !holds(&before, r));
                    prop_assert!(
                        !raised || interactive,
                        "{op:?} by a non-interactive {p:?} raised {before:?} to {granted:?}"
                    );
                }
                let needs = match op {
                    Op::CreateApp { .. } | Op::PatchApp { .. } => p.has(Role::OrgAdmin) || p.has(Role::OrgDeveloper),
                    Op::CreatePat { .. } => true,
                    _ => p.has(Role::OrgAdmin),
                };
                prop_assert!(needs, "{op:?} succeeded for {p:?}, who lacks the organization role it needs");
            }
            Err(service::Error::Forbidden(_) | service::Error::Invalid { .. }) => entry.1 += 1,
            Err(service::Error::NotFound | service::Error::Conflict(_)) => entry.1 += 1,
            Err(e) => return Err(TestCaseError::fail(format!("{op:?} by {p:?} failed: {e}"))),
        }
        Ok(())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some((base, name)) = &self.pg {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            if let Ok(mut admin) = diesel::PgConnection::establish(base) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// Every success hands out only roles the actor holds, from an actor with the organization
/// role the operation needs; raising an existing credential and minting a token or app need
/// an interactive login; acting on a credential needs every role it holds.
#[test]
fn grants_never_exceed_the_granter() {
    grants_never_exceed_the_granter_on(None);
}

/// The same on PostgreSQL, when TOKEND_TEST_DATABASE_URL is set.
#[test]
#[cfg_attr(tokend_skip_pg, ignore = "SKIPPED: TOKEND_TEST_DATABASE_URL is not set")]
fn grants_never_exceed_the_granter_on_postgres() {
    if let common::Backend::Postgres(base) = common::Backend::postgres() {
        grants_never_exceed_the_granter_on(Some(&base));
    }
}

fn grants_never_exceed_the_granter_on(pg_base: Option<&str>) {
    let started = std::time::Instant::now();
    let w = World::new(pg_base);
    let case = (actor(), proptest::collection::vec(op(), 1..=6));
    let mut runner = TestRunner::new(config());
    let result = runner.run(&case, |(a, ops)| {
        let p = w.actor(&a);
        for op in &ops {
            w.apply(&p, op)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // Not vacuous: every kind of operation both succeeded and was refused many times.
    let stats = w.stats.borrow();
    let backend = if pg_base.is_some() { "PostgreSQL" } else { "SQLite" };
    eprintln!(
        "role algebra on {backend}: {CASES} cases in {:.1?}; (successes, refusals) per operation: {stats:?}",
        started.elapsed()
    );
    assert_eq!(stats.len(), 8, "{stats:?}");
    for (kind, (ok, refused)) in stats.iter() {
        assert!(*ok >= 50 && *refused >= 50, "{kind}: {ok} successes and {refused} refusals: {stats:?}");
    }
}

proptest! {
    #![proptest_config(config())]

    /// `intersect(token, owner)` — the roles of every exchanged access token — holds only
    /// roles the owner holds and the token implies, and keeps every token role the owner
    /// still holds.
    #[test]
    fn intersect_is_held_by_the_owner_and_implied_by_the_token(
        token in proptest::collection::vec(prop_oneof![proptest::sample::select(UNIVERSE.to_vec()), Just(GHOST)], 0..6),
        owner in proptest::collection::vec(prop_oneof![proptest::sample::select(UNIVERSE.to_vec()), Just(GHOST)], 0..6),
    ) {
        let (token, owner) = (strings(&token), strings(&owner));
        let got = intersect(&token, &owner);
        for r in &got {
            prop_assert!(holds(&owner, r), "{r} in intersect({token:?}, {owner:?}) is not held by the owner");
            prop_assert!(implies(&token, r), "{r} in intersect({token:?}, {owner:?}) is not implied by the token");
        }
        for r in &token {
            prop_assert!(!holds(&owner, r) || got.contains(r), "{r} of the token, held by the owner, was dropped");
        }
        let mut sorted = got.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(sorted, got, "sorted, without duplicates");
    }
}

//! The org-wide token table at scale: 100,000 API tokens in one org, then the queries an
//! admin console runs, timed through the service layer (the same code the HTTP handler
//! calls), on SQLite or on PostgreSQL.
//!
//!   cargo bench --bench table                       # SQLite in a temp dir
//!   cargo bench --bench table -- postgres://postgres@127.0.0.1:5432/test
use std::sync::Arc;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use tokend::clock::{Clock, FixedClock};
use tokend::config::Config;
use tokend::service::{tokens::table, Acct, Principal};
use tokend::store::models::ApiToken;
use tokend::store::schema::{api_tokens, service_accounts, users};

const TOKENS: usize = 100_000;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let arg = std::env::args().skip(1).find(|a| a.starts_with("postgres"));
    let url = match &arg {
        Some(base) => {
            let name = format!("tokend_bench_{}", std::process::id());
            let mut admin = diesel::PgConnection::establish(base).expect("postgres");
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
            admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            format!("{}/{name}", base.rsplit_once('/').unwrap().0)
        }
        None => format!("sqlite://{}/bench.db", dir.path().display()),
    };
    let now = 1_800_000_000;
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(now));
    let mut cfg = Config::for_test(&url, &dir.path().join("keys"));
    cfg.bootstrap_password = Some("bench-password-123".into());
    let (state, created) = tokend::boot(cfg, clock).expect("boot");
    let created = created.unwrap();
    let org = created.org_id.clone();
    let owner = created.owner_id.clone();

    // 200 owners (users and service accounts), 500 tokens each, varied states.
    let t0 = Instant::now();
    {
        let mut conn = state.db.write().unwrap();
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            let mut owners: Vec<(String, &str, String)> = Vec::new();
            for i in 0..200 {
                let id = uuid::Uuid::now_v7().to_string();
                if i % 2 == 0 {
                    diesel::insert_into(users::table)
                        .values((
                            users::id.eq(&id),
                            users::org_id.eq(&org),
                            users::email.eq(format!("user{i}@bench.example")),
                            users::name.eq(format!("User {i}")),
                            users::roles.eq("[\"org:member\"]"),
                            users::disabled.eq(false),
                            users::created_at.eq(now),
                            users::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    owners.push((id, "user", format!("user{i}@bench.example")));
                } else {
                    diesel::insert_into(service_accounts::table)
                        .values((
                            service_accounts::id.eq(&id),
                            service_accounts::org_id.eq(&org),
                            service_accounts::name.eq(format!("collector-{i}")),
                            service_accounts::description.eq(""),
                            service_accounts::roles.eq("[\"metrics:write\"]"),
                            service_accounts::disabled.eq(false),
                            service_accounts::created_at.eq(now),
                            service_accounts::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    owners.push((id, "service_account", format!("collector-{i}")));
                }
            }
            for i in 0..TOKENS {
                let (owner_id, kind, label) = &owners[i % owners.len()];
                let name = format!("token-{}", i % 977);
                let description = if i % 10 == 0 { "deploy pipeline".to_string() } else { String::new() };
                let hint = format!("tkd_pat_{:04}…", i % 10_000);
                let row = ApiToken {
                    id: uuid::Uuid::now_v7().to_string(),
                    org_id: org.clone(),
                    owner_kind: kind.to_string(),
                    owner_id: owner_id.clone(),
                    search: ApiToken::search_text(&name, &description, &hint, label),
                    owner_label: label.clone(),
                    name,
                    description,
                    hint,
                    secret_hash: format!("{:064x}", i),
                    roles: if i % 3 == 0 { "[\"metrics:read\"]".into() } else { "[\"org:member\"]".into() },
                    created_at: now - (TOKENS - i) as i64 * 60,
                    expires_at: now + (i as i64 % 90 - 30) * 86_400,
                    idle_ttl_days: (i % 4 == 0).then_some(30),
                    last_used_at: (i % 5 != 0).then_some(now - (i as i64 % 100) * 86_400),
                    last_used_ip: None,
                    revoked_at: (i % 17 == 0).then_some(now - 3600),
                    revoked_by: None,
                    created_by: None,
                    secret_seen_by: "[]".into(),
                    audiences: tokend::service::authz::reach::ALL_TEXT.into(),
                    management: false,
                };
                diesel::insert_into(api_tokens::table).values(&row).execute(conn)?;
            }
            Ok(())
        })
        .unwrap();
        conn.batch_execute("ANALYZE").unwrap();
    }
    println!("backend {:?}: inserted {TOKENS} tokens in {:.1}s", state.db.backend, t0.elapsed().as_secs_f64());

    let p = Principal {
        org_id: org.clone(),
        acct: Acct::User,
        id: owner,
        roles: tokend::service::RoleSet::of(&[tokend::service::Role::OrgOwner]),
        interactive: true,
        token_id: None,
        ip: None,
        sid: None,
        jti: "bench".into(),
        exp: i64::MAX,
    };
    let queries = [
        "",
        "page=2000&page_size=50",
        "sort=name&order=desc",
        "sort=owner",
        "sort=last_used_at&order=desc",
        "sort=expires_at",
        "status=active",
        "status=idle",
        "status=revoked&sort=owner",
        "usage=never_used",
        "unused_since=2026-06-01T00:00:00Z",
        "role=metrics:read",
        "owner_kind=service_account&sort=name",
        "q=deploy",
        "q=user42@bench",
        "page_size=200&page=3",
    ];
    println!("{:<42} {:>10} {:>10} {:>8}", "query (GET /api/v1/tokens?…)", "median ms", "max ms", "total");
    let mut worst: f64 = 0.0;
    for q in queries {
        let parsed = table::parse(q).expect("valid query");
        let mut times = Vec::new();
        let mut total = 0;
        for _ in 0..7 {
            let mut conn = state.db.read().unwrap();
            let t = Instant::now();
            let page = table::list(&mut conn, &p, &parsed, &state.usage, now).expect("list");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            total = page.total_count;
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        worst = worst.max(times[3]);
        println!(
            "{:<42} {:>10.1} {:>10.1} {:>8}",
            if q.is_empty() { "(default)" } else { q },
            times[3],
            times[6],
            total
        );
    }
    println!("slowest median: {worst:.1} ms");
    if let Some(base) = arg {
        drop(state);
        let mut admin = diesel::PgConnection::establish(&base).unwrap();
        let _ =
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS tokend_bench_{} WITH (FORCE)", std::process::id()));
    }
}

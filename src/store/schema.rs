// One schema for both backends: ids are TEXT (UUIDv7), times are BIGINT unix seconds,
// role lists are JSON text. These map identically on SQLite and PostgreSQL.
diesel::table! {
    orgs (id) {
        id -> Text,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        org_id -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Nullable<Text>,
        roles -> Text,
        disabled -> Bool,
        deleted_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        epoch -> BigInt,
    }
}

diesel::table! {
    roles (org_id, name) {
        org_id -> Text,
        name -> Text,
        kind -> Text,
        description -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    service_accounts (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        description -> Text,
        roles -> Text,
        disabled -> Bool,
        deleted_at -> Nullable<BigInt>,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        epoch -> BigInt,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        org_id -> Text,
        owner_kind -> Text,
        owner_id -> Text,
        name -> Text,
        description -> Text,
        hint -> Text,
        secret_hash -> Text,
        roles -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        idle_ttl_days -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        last_used_ip -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
        revoked_by -> Nullable<Text>,
        created_by -> Nullable<Text>,
        owner_label -> Text,
        search -> Text,
        expiry_notice -> Nullable<BigInt>,
        audiences -> Text,
        management -> Bool,
        secret_seen_by -> Text,
    }
}

diesel::table! {
    apps (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        description -> Text,
        client_id -> Text,
        secret_hash -> Text,
        secret_hint -> Text,
        roles -> Text,
        access_token_ttl_seconds -> BigInt,
        disabled -> Bool,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        epoch -> BigInt,
        introspect -> Bool,
        previous_secret_hash -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<BigInt>,
        audiences -> Text,
        management -> Bool,
        secret_seen_by -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        org_id -> Text,
        user_id -> Text,
        epoch -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        secret_hash -> Nullable<Text>,
    }
}

diesel::table! {
    revoked_jtis (jti) {
        jti -> Text,
        org_id -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    reset_codes (id) {
        id -> Text,
        org_id -> Text,
        user_id -> Text,
        code_hash -> Text,
        created_by -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        user_roles -> Nullable<Text>,
    }
}

diesel::table! {
    policies (org_id) {
        org_id -> Text,
        personal_token_max_ttl_days -> BigInt,
        service_token_max_ttl_days -> BigInt,
        idle_ttl_days -> Nullable<BigInt>,
        max_tokens_per_service_account -> BigInt,
        updated_at -> BigInt,
        retention_days -> BigInt,
        allow_self_rotation -> Bool,
        default_audiences -> Text,
        allow_management_audience_for -> Nullable<Text>,
    }
}

diesel::table! {
    saved_searches (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        query -> Text,
        created_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        org_id -> Nullable<Text>,
        at -> BigInt,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        action -> Text,
        object_kind -> Nullable<Text>,
        object_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        outcome -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        org_id -> Text,
        url -> Text,
        description -> Text,
        events -> Text,
        enabled -> Bool,
        secret_sealed -> Text,
        secret_hint -> Text,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        secret_seen_by -> Text,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        org_id -> Text,
        kind -> Text,
        event_id -> Text,
        event_type -> Text,
        payload -> Text,
        webhook_id -> Nullable<Text>,
        recipient -> Nullable<Text>,
        attempts -> BigInt,
        next_attempt_at -> BigInt,
        locked_until -> Nullable<BigInt>,
        locked_by -> Nullable<Text>,
        delivered_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        webhook_id -> Text,
        org_id -> Text,
        outbox_id -> Text,
        event_id -> Text,
        event_type -> Text,
        attempt -> BigInt,
        at -> BigInt,
        status_code -> Nullable<BigInt>,
        duration_ms -> BigInt,
        outcome -> Text,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    revocation_feed (seq) {
        seq -> BigInt,
        org_id -> Text,
        kind -> Text,
        subject -> Text,
        acct -> Nullable<Text>,
        epoch -> Nullable<BigInt>,
        at -> BigInt,
        keep_until -> BigInt,
    }
}

diesel::table! {
    trust_policies (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        description -> Text,
        issuer -> Text,
        audience -> Text,
        conditions -> Text,
        service_account_id -> Text,
        roles -> Text,
        max_age_seconds -> BigInt,
        disabled -> Bool,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    app_delegations (app_id, audience) {
        app_id -> Text,
        audience -> Text,
        org_id -> Text,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    orgs,
    users,
    roles,
    service_accounts,
    api_tokens,
    apps,
    policies,
    saved_searches,
    audit_events,
    sessions,
    revoked_jtis,
    reset_codes,
    webhooks,
    outbox,
    webhook_deliveries,
    revocation_feed,
);

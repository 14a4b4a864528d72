//! Diesel table definitions, shared by both backends (see `migrations/`).

diesel::table! {
    scim_users (id) {
        id -> Text,
        user_name -> Text,
        user_name_key -> Text,
        external_id -> Nullable<Text>,
        display_name -> Nullable<Text>,
        active -> Nullable<Bool>,
        data -> Text,
        version -> BigInt,
        created_at -> BigInt,
        last_modified -> BigInt,
        connection -> Text,
        external_id_key -> Nullable<Text>,
    }
}

diesel::table! {
    maintenance (task) {
        task -> Text,
        done_at -> BigInt,
    }
}

diesel::table! {
    scim_user_passwords (user_id) {
        user_id -> Text,
        hash -> Text,
        sealed -> Nullable<Text>,
        changed_at -> BigInt,
    }
}

diesel::table! {
    scim_user_emails (user_id, position) {
        user_id -> Text,
        position -> Integer,
        value_key -> Text,
        email_type -> Nullable<Text>,
        is_primary -> Bool,
    }
}

diesel::table! {
    scim_groups (id) {
        id -> Text,
        display_name -> Text,
        display_name_key -> Text,
        external_id -> Nullable<Text>,
        data -> Text,
        version -> BigInt,
        created_at -> BigInt,
        last_modified -> BigInt,
        connection -> Text,
        external_id_key -> Nullable<Text>,
    }
}

diesel::table! {
    scim_group_members (group_id, member_id) {
        group_id -> Text,
        member_id -> Text,
        member_type -> Text,
        display -> Nullable<Text>,
    }
}

diesel::table! {
    change_log (seq) {
        seq -> BigInt,
        resource_type -> Text,
        resource_id -> Text,
        operation -> Text,
        version -> BigInt,
        actor -> Text,
        occurred_at -> BigInt,
        connection -> Text,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        name -> Text,
        token_hash -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        role -> Text,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        connection -> Nullable<Text>,
    }
}

diesel::joinable!(scim_user_emails -> scim_users (user_id));
diesel::joinable!(scim_group_members -> scim_groups (group_id));
diesel::allow_tables_to_appear_in_same_query!(
    scim_users,
    scim_user_emails,
    scim_groups,
    scim_group_members,
    change_log,
    api_tokens,
    orders,
    order_attempts,
    order_transitions,
    identity_links,
    planner_position,
);

diesel::table! {
    planner_position (name) {
        name -> Text,
        last_seq -> BigInt,
    }
}

diesel::table! {
    orders (id) {
        id -> BigInt,
        target -> Text,
        resource_type -> Text,
        resource_id -> Text,
        change_seq -> BigInt,
        operation -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        remote_id -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        origin -> Text,
        sync_id -> Nullable<BigInt>,
        held_reason -> Nullable<Text>,
        approved -> Bool,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<BigInt>,
        decision_comment -> Nullable<Text>,
        waiting_for -> Nullable<Text>,
        note -> Nullable<Text>,
        held_by -> Nullable<Text>,
        revision -> BigInt,
        previous_state -> Nullable<Text>,
        connection -> Nullable<Text>,
    }
}

diesel::table! {
    order_attempts (id) {
        id -> BigInt,
        order_id -> BigInt,
        started_at -> BigInt,
        duration_ms -> BigInt,
        http_status -> Nullable<Integer>,
        error -> Nullable<Text>,
        response_id -> Nullable<Text>,
    }
}

diesel::table! {
    order_transitions (id) {
        id -> BigInt,
        order_id -> BigInt,
        state -> Text,
        at -> BigInt,
    }
}

diesel::table! {
    identity_links (target, resource_type, source_id) {
        target -> Text,
        resource_type -> Text,
        source_id -> Text,
        remote_id -> Text,
        linked_at -> BigInt,
    }
}

diesel::table! {
    targets (name) {
        name -> Text,
        config -> Text,
        version -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    targets_generation (id) {
        id -> Integer,
        value -> BigInt,
    }
}

diesel::table! {
    target_health (target) {
        target -> Text,
        consecutive_failures -> Integer,
        quarantined_since -> Nullable<BigInt>,
        next_probe_at -> Nullable<BigInt>,
        probe_delay -> BigInt,
        updated_at -> BigInt,
        failing_since -> Nullable<BigInt>,
        revision -> BigInt,
    }
}

diesel::table! {
    accounts (target, resource_type, remote_id) {
        target -> Text,
        resource_type -> Text,
        remote_id -> Text,
        attributes -> Text,
        fingerprint -> BigInt,
        identity_id -> Nullable<Text>,
        situation -> Text,
        candidates -> Nullable<Text>,
        aggregation_id -> BigInt,
        last_seen -> BigInt,
    }
}

diesel::table! {
    sync_runs (id) {
        id -> BigInt,
        target -> Text,
        kind -> Text,
        dry_run -> Bool,
        state -> Text,
        trigger -> Text,
        started_at -> BigInt,
        finished_at -> Nullable<BigInt>,
        summary -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    sync_drift (id) {
        id -> BigInt,
        sync_id -> BigInt,
        resource_type -> Text,
        identity_id -> Nullable<Text>,
        remote_id -> Nullable<Text>,
        finding -> Text,
        attributes -> Nullable<Text>,
        action -> Text,
        order_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    target_locks (target) {
        target -> Text,
        holder -> Text,
        sync_id -> Nullable<BigInt>,
        acquired_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    work_items (id) {
        id -> BigInt,
        order_id -> BigInt,
        target -> Text,
        resource_type -> Text,
        resource_id -> Text,
        action -> Text,
        summary -> Text,
        data -> Text,
        state -> Text,
        created_at -> BigInt,
        closed_at -> Nullable<BigInt>,
        closed_by -> Nullable<Text>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    events (seq) {
        seq -> BigInt,
        id -> Text,
        event_type -> Text,
        resource_type -> Text,
        resource_id -> Text,
        resource_seq -> BigInt,
        target -> Nullable<Text>,
        actor -> Text,
        occurred_at -> BigInt,
        data -> Text,
    }
}

diesel::table! {
    connections (name) {
        name -> Text,
        enabled -> Bool,
        settings -> Text,
        version -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    order_tallies (target, state) {
        target -> Text,
        state -> Text,
        orders -> BigInt,
        last_entered_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    order_tally_changes (id) {
        id -> BigInt,
        target -> Text,
        state -> Text,
        delta -> BigInt,
        entered_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    console_sessions (id_hash) {
        id_hash -> Text,
        actor -> Text,
        role -> Text,
        csrf -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    event_subscriptions (id) {
        id -> Text,
        name -> Text,
        format -> Text,
        url -> Nullable<Text>,
        event_types -> Text,
        targets -> Nullable<Text>,
        resource_types -> Nullable<Text>,
        secrets -> Text,
        audience -> Nullable<Text>,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        max_age_seconds -> BigInt,
        position -> BigInt,
        from_config -> Bool,
        sender -> Nullable<Text>,
        sender_until -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    event_deliveries (id) {
        id -> BigInt,
        subscription_id -> Text,
        event_seq -> BigInt,
        resource_key -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        created_at -> BigInt,
        finished_at -> Nullable<BigInt>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    event_delivery_attempts (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        at -> BigInt,
        status -> Nullable<Integer>,
        latency_ms -> BigInt,
        error -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(events, event_deliveries, event_subscriptions);

diesel::table! {
    schema_extensions (urn) {
        urn -> Text,
        declaration -> Text,
        version -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

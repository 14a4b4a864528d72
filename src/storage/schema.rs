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
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        name -> Text,
        token_hash -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
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
);

//! The core User schema (RFC 7643 §4.1, characteristics as in §8.7.1).

use super::{AttributeDef, Returned, SchemaDef};

const fn multi_value_subs(
    value_description: &'static str,
    types: &'static [&'static str],
) -> [AttributeDef; 4] {
    [
        AttributeDef::string("value").describe(value_description),
        AttributeDef::string("display").describe("A human-readable name, primarily used for display purposes."),
        AttributeDef::string("type")
            .describe("A label indicating the attribute's function.")
            .canonical(types),
        AttributeDef::boolean("primary").describe(
            "A Boolean value indicating the 'primary' or preferred attribute value for this attribute.",
        ),
    ]
}

const NAME_SUBS: [AttributeDef; 6] = [
    AttributeDef::string("formatted").describe(
        "The full name, including all middle names, titles, and suffixes, formatted for display.",
    ),
    AttributeDef::string("familyName").describe("The family name of the User, or last name."),
    AttributeDef::string("givenName").describe("The given name of the User, or first name."),
    AttributeDef::string("middleName").describe("The middle name(s) of the User."),
    AttributeDef::string("honorificPrefix")
        .describe("The honorific prefix(es) of the User, or title."),
    AttributeDef::string("honorificSuffix")
        .describe("The honorific suffix(es) of the User, or suffix."),
];

const EMAIL_SUBS: [AttributeDef; 4] = multi_value_subs(
    "Email addresses for the user, canonicalized per RFC 5321.",
    &["work", "home", "other"],
);
const PHONE_SUBS: [AttributeDef; 4] = multi_value_subs(
    "Phone number of the User, ideally in RFC 3966 format.",
    &["work", "home", "mobile", "fax", "pager", "other"],
);
const IM_SUBS: [AttributeDef; 4] = multi_value_subs(
    "Instant messaging address for the User.",
    &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
);
const PHOTO_SUBS: [AttributeDef; 4] = [
    AttributeDef::reference("value", &["external"]).describe("URL of a photo of the User."),
    AttributeDef::string("display")
        .describe("A human-readable name, primarily used for display purposes."),
    AttributeDef::string("type")
        .describe("A label indicating the attribute's function, i.e., 'photo' or 'thumbnail'.")
        .canonical(&["photo", "thumbnail"]),
    AttributeDef::boolean("primary")
        .describe("A Boolean value indicating the 'primary' or preferred photo."),
];
const ADDRESS_SUBS: [AttributeDef; 8] = [
    AttributeDef::string("formatted")
        .describe("The full mailing address, formatted for display or use with a mailing label."),
    AttributeDef::string("streetAddress").describe("The full street address component."),
    AttributeDef::string("locality").describe("The city or locality component."),
    AttributeDef::string("region").describe("The state or region component."),
    AttributeDef::string("postalCode").describe("The zip code or postal code component."),
    AttributeDef::string("country").describe("The country name component (ISO 3166-1 alpha-2)."),
    AttributeDef::string("type")
        .describe("A label indicating the attribute's function.")
        .canonical(&["work", "home", "other"]),
    AttributeDef::boolean("primary")
        .describe("A Boolean value indicating the 'primary' or preferred address."),
];
const GROUP_SUBS: [AttributeDef; 4] = [
    AttributeDef::string("value")
        .describe("The identifier of the User's group.")
        .read_only(),
    AttributeDef::reference("$ref", &["User", "Group"])
        .describe("The URI of the corresponding 'Group' resource to which the user belongs.")
        .read_only(),
    AttributeDef::string("display")
        .describe("A human-readable name, primarily used for display purposes.")
        .read_only(),
    AttributeDef::string("type")
        .describe("A label indicating the attribute's function, e.g., 'direct' or 'indirect'.")
        .canonical(&["direct", "indirect"])
        .read_only(),
];
const ENTITLEMENT_SUBS: [AttributeDef; 4] = multi_value_subs("The value of an entitlement.", &[]);
const ROLE_SUBS: [AttributeDef; 4] = multi_value_subs("The value of a role.", &[]);
const CERTIFICATE_SUBS: [AttributeDef; 4] = [
    AttributeDef::binary("value").describe("The value of an X.509 certificate (DER, base64)."),
    AttributeDef::string("display")
        .describe("A human-readable name, primarily used for display purposes."),
    AttributeDef::string("type").describe("A label indicating the attribute's function."),
    AttributeDef::boolean("primary")
        .describe("A Boolean value indicating the 'primary' or preferred certificate."),
];

const ATTRIBUTES: [AttributeDef; 21] = [
    AttributeDef::string("userName")
        .describe("Unique identifier for the User, typically used by the user to directly authenticate to the service provider.")
        .required()
        .unique_server(),
    AttributeDef::complex("name", &NAME_SUBS).describe("The components of the user's real name."),
    AttributeDef::string("displayName").describe("The name of the User, suitable for display to end-users."),
    AttributeDef::string("nickName").describe("The casual way to address the user in real life."),
    AttributeDef::reference("profileUrl", &["external"]).describe("A fully qualified URL pointing to a page representing the User's online profile."),
    AttributeDef::string("title").describe("The user's title, such as \"Vice President\"."),
    AttributeDef::string("userType").describe("Used to identify the relationship between the organization and the user."),
    AttributeDef::string("preferredLanguage").describe("Indicates the User's preferred written or spoken language (RFC 7231 Accept-Language format)."),
    AttributeDef::string("locale").describe("Used to indicate the User's default location for purposes of localizing items such as currency."),
    AttributeDef::string("timezone").describe("The User's time zone in the 'Olson' time zone database format."),
    AttributeDef::boolean("active").describe("A Boolean value indicating the User's administrative status."),
    AttributeDef::string("password")
        .describe("The User's cleartext password, used to set or compare a password; never returned.")
        .write_only()
        .returned(Returned::Never),
    AttributeDef::complex("emails", &EMAIL_SUBS).describe("Email addresses for the user.").multi(),
    AttributeDef::complex("phoneNumbers", &PHONE_SUBS).describe("Phone numbers for the User.").multi(),
    AttributeDef::complex("ims", &IM_SUBS).describe("Instant messaging addresses for the User.").multi(),
    AttributeDef::complex("photos", &PHOTO_SUBS).describe("URLs of photos of the User.").multi(),
    AttributeDef::complex("addresses", &ADDRESS_SUBS).describe("A physical mailing address for this User.").multi(),
    AttributeDef::complex("groups", &GROUP_SUBS)
        .describe("A list of groups to which the user belongs, either through direct membership or through nested groups.")
        .multi()
        .read_only(),
    AttributeDef::complex("entitlements", &ENTITLEMENT_SUBS).describe("A list of entitlements for the User.").multi(),
    AttributeDef::complex("roles", &ROLE_SUBS).describe("A list of roles for the User.").multi(),
    AttributeDef::complex("x509Certificates", &CERTIFICATE_SUBS).describe("A list of certificates issued to the User.").multi(),
];

pub(super) const SCHEMA: SchemaDef = SchemaDef {
    id: super::USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: &ATTRIBUTES,
};

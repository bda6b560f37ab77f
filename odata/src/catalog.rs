//! What we know about Microsoft Graph v1.0 user properties: their type, and which `$filter`
//! operators Graph accepts on each, in its standard and in its advanced query mode.
//!
//! The filter validator checks admins' expressions against this table so that a filter Graph
//! would reject is rejected here first, with a better message. The rules follow Graph's
//! published per-property notes; where the live service is known to be stricter than the
//! docs (e.g. `companyName` only works with advanced queries), the table follows the service.
//! `in` is accepted wherever `eq` is, because Graph treats it as a list of `eq`s.

/// The value type of a property, as far as filtering and mapping care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text (`Edm.String`), compared with quoted literals.
    String,
    /// `Edm.Boolean`, compared with bare `true` or `false`.
    Bool,
    /// `Edm.DateTimeOffset`, compared with bare ISO 8601 literals such as `2024-01-01T00:00:00Z`.
    DateTime,
    /// An `Edm.Guid`: compared with unquoted GUID literals (unlike `id`, which is a string).
    Guid,
    /// A collection of text values, e.g. `proxyAddresses`; filtered through a lambda or `$count`.
    StringCollection,
    /// A single complex value with named parts, e.g. `employeeOrgData/costCenter`.
    Object(&'static [Property]),
    /// A collection of complex values, filtered through a lambda, e.g. `assignedLicenses`.
    ObjectCollection(&'static [Property]),
    /// A directory extension: any primitive type, only known to the tenant.
    Extension,
}

impl Kind {
    /// Whether the property holds a collection, filtered through a lambda or `$count`.
    pub fn is_collection(self) -> bool {
        matches!(self, Kind::StringCollection | Kind::ObjectCollection(_))
    }

    /// How the kind is named in messages, e.g. "a collection of text values".
    pub fn describe(self) -> &'static str {
        match self {
            Kind::String => "text",
            Kind::Bool => "a boolean",
            Kind::DateTime => "a date-time",
            Kind::Guid => "a GUID",
            Kind::StringCollection => "a collection of text values",
            Kind::Object(_) => "an object with named parts",
            Kind::ObjectCollection(_) => "a collection of objects",
            Kind::Extension => "a directory extension",
        }
    }
}

/// A set of filter operations. `ne` and `not` are not listed: Graph allows them wherever `eq`
/// is allowed, always in advanced mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ops(u8);

impl Ops {
    /// No operation at all.
    pub const NONE: Ops = Ops(0);
    /// `eq` and `in`.
    pub const EQ: Ops = Ops(1);
    /// `startsWith`.
    pub const STARTS_WITH: Ops = Ops(1 << 1);
    /// `endsWith`.
    pub const ENDS_WITH: Ops = Ops(1 << 2);
    /// `ge` and `le`.
    pub const RANGE: Ops = Ops(1 << 3);
    /// `eq null`.
    pub const EQ_NULL: Ops = Ops(1 << 4);
    /// `/$count` on a collection.
    pub const COUNT: Ops = Ops(1 << 5);

    /// The operations in either set.
    pub const fn with(self, other: Ops) -> Ops {
        Ops(self.0 | other.0)
    }

    /// Whether every operation in `other` is in this set.
    pub const fn contains(self, other: Ops) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Which operations Graph accepts on one property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filtering {
    /// Accepted in a plain request.
    pub standard: Ops,
    /// Accepted only with `ConsistencyLevel: eventual` and `$count=true`.
    pub advanced: Ops,
    /// Graph refuses this property in advanced mode (e.g. `identities`).
    pub not_in_advanced: bool,
    /// Graph accepts a filter on this property only when no other property is in the
    /// filter (e.g. `signInActivity`).
    pub alone: bool,
}

impl Filtering {
    /// Graph filters on the property in no mode.
    pub const NONE: Filtering = Filtering {
        standard: Ops::NONE,
        advanced: Ops::NONE,
        not_in_advanced: false,
        alone: false,
    };

    /// Whether Graph accepts any filter operation on the property, in either mode.
    pub fn is_filterable(&self) -> bool {
        self.standard != Ops::NONE || self.advanced != Ops::NONE
    }

    /// `Some(needs_advanced)` if the operation is accepted at all.
    pub fn allows(&self, op: Ops) -> Option<bool> {
        if self.standard.contains(op) {
            Some(false)
        } else if self.advanced.contains(op) {
            Some(true)
        } else {
            None
        }
    }
}

/// One Graph user property (or one part of a complex property).
#[derive(Debug, PartialEq, Eq)]
pub struct Property {
    /// The name as Graph spells it, e.g. `displayName`.
    pub name: &'static str,
    /// The value type, which decides the literals the property is compared with.
    pub kind: Kind,
    /// Which filter operations Graph accepts on the property, and in which mode.
    pub filter: Filtering,
}

const fn ops(standard: Ops, advanced: Ops) -> Filtering {
    Filtering {
        standard,
        advanced,
        not_in_advanced: false,
        alone: false,
    }
}

/// Graph compares `coll/$count` only with these numbers. The "Advanced query capabilities"
/// page (section "Support for filter by properties of Microsoft Entra ID (directory)
/// objects") names `eq 0`/`ne 0` for empty collections and, in some versions, `eq 1`/`ne 1`;
/// its examples and Graph Explorer only ever use 0. We follow 0 alone; add 1 here to follow
/// the longer list.
pub const COUNT_VALUES: &[i64] = &[0];

/// `assignedPlans/any(…)`: the v1.0 user resource page says "Supports `$filter` (`eq` and
/// `not`)" and the advanced-query page's user table marks `eq` as working by default, but
/// the live service answers 400 `Request_UnsupportedQuery` without the advanced headers.
/// We follow the service (advanced). To follow the two pages instead, make this
/// `ops(EQ, NO)`.
const ASSIGNED_PLAN_PART: Filtering = ops(NO, EQ);

/// `passwordProfile/forceChangePasswordNextSignIn`: the v1.0 user resource page says
/// `passwordProfile` "Supports `$filter` (`eq`, `ne`, `not`, `in`, and `eq` on `null`
/// values)"; the advanced-query page's user table does not list it (which by its legend
/// means not filterable). We follow the user page, in advanced mode as Graph serves it.
/// To follow the advanced-query table instead, make this `NOT_FILTERABLE`.
const FORCE_CHANGE_PASSWORD: Filtering = ops(NO, EQ);

/// `onPremisesSyncEnabled eq null` (never synced, i.e. cloud-only users): the v1.0 user
/// resource page lists "`eq` on `null` values"; the advanced-query page's user table leaves
/// the null column empty for it, as for every other boolean. We follow the user page. To
/// follow the table instead, make this `ops(EQ, NO)`.
const ON_PREMISES_SYNC_ENABLED: Filtering = ops(EQ, NULL);

/// `signInActivity/*`: user resource page, `signInActivity`: "Supports `$filter` (`eq`,
/// `ne`, `not`, `ge`, `le`) but not with any other filterable properties"; the
/// advanced-query page's user table marks `eq`, `ge`, `le` as working by default.
const SIGN_IN_DATE: Filtering = Filtering {
    alone: true,
    ..ops(EQ.with(RANGE), NO)
};

const fn prop(name: &'static str, kind: Kind, filter: Filtering) -> Property {
    Property { name, kind, filter }
}

const EQ: Ops = Ops::EQ;
const SW: Ops = Ops::STARTS_WITH;
const EW: Ops = Ops::ENDS_WITH;
const RANGE: Ops = Ops::RANGE;
const NULL: Ops = Ops::EQ_NULL;
const COUNT: Ops = Ops::COUNT;
const NO: Ops = Ops::NONE;

/// Plain text: `eq`, `in`, `startsWith`; `eq null` in advanced mode.
const TEXT: Filtering = ops(EQ.with(SW), NULL);
/// Text Graph filters only in advanced mode.
const TEXT_ADV: Filtering = ops(NO, EQ.with(SW).with(NULL));
/// Enumerations kept as text: `eq`, `in`. Advanced-query page, user table: the null column
/// is empty for `ageGroup`, `consentProvidedForMinor`, `creationType`, `externalUserState`:
/// Graph refuses `eq null` on them.
const ENUM: Filtering = ops(EQ, NO);
/// `userType`: as [`ENUM`], and `eq null` in advanced mode (user page and advanced-query
/// table both list null values).
const ENUM_NULL: Filtering = ops(EQ, NULL);
const NOT_FILTERABLE: Filtering = Filtering::NONE;

const EXTENSION_ATTRIBUTES: &[Property] = &[
    prop("extensionAttribute1", Kind::String, TEXT_ADV),
    prop("extensionAttribute2", Kind::String, TEXT_ADV),
    prop("extensionAttribute3", Kind::String, TEXT_ADV),
    prop("extensionAttribute4", Kind::String, TEXT_ADV),
    prop("extensionAttribute5", Kind::String, TEXT_ADV),
    prop("extensionAttribute6", Kind::String, TEXT_ADV),
    prop("extensionAttribute7", Kind::String, TEXT_ADV),
    prop("extensionAttribute8", Kind::String, TEXT_ADV),
    prop("extensionAttribute9", Kind::String, TEXT_ADV),
    prop("extensionAttribute10", Kind::String, TEXT_ADV),
    prop("extensionAttribute11", Kind::String, TEXT_ADV),
    prop("extensionAttribute12", Kind::String, TEXT_ADV),
    prop("extensionAttribute13", Kind::String, TEXT_ADV),
    prop("extensionAttribute14", Kind::String, TEXT_ADV),
    prop("extensionAttribute15", Kind::String, TEXT_ADV),
];

const EMPLOYEE_ORG_DATA: &[Property] = &[
    prop("costCenter", Kind::String, ops(NO, EQ.with(SW))),
    prop("division", Kind::String, ops(NO, EQ.with(SW))),
];

const ASSIGNED_LICENSE: &[Property] = &[
    prop("skuId", Kind::Guid, ops(EQ, NO)),
    prop("disabledPlans", Kind::StringCollection, NOT_FILTERABLE),
];

const ASSIGNED_PLAN: &[Property] = &[
    prop("servicePlanId", Kind::Guid, ASSIGNED_PLAN_PART),
    prop("capabilityStatus", Kind::String, ASSIGNED_PLAN_PART),
    prop("service", Kind::String, ASSIGNED_PLAN_PART),
    prop("assignedDateTime", Kind::DateTime, NOT_FILTERABLE),
];

const OBJECT_IDENTITY: &[Property] = &[
    prop("signInType", Kind::String, ops(EQ, NO)),
    prop("issuer", Kind::String, ops(EQ, NO)),
    prop("issuerAssignedId", Kind::String, ops(EQ, NO)),
];

const PASSWORD_PROFILE: &[Property] = &[
    prop(
        "forceChangePasswordNextSignIn",
        Kind::Bool,
        FORCE_CHANGE_PASSWORD,
    ),
    prop(
        "forceChangePasswordNextSignInWithMfa",
        Kind::Bool,
        NOT_FILTERABLE,
    ),
];

/// "Manage inactive user accounts" (Entra docs) filters on all three dates.
const SIGN_IN_ACTIVITY: &[Property] = &[
    prop("lastSignInDateTime", Kind::DateTime, SIGN_IN_DATE),
    prop(
        "lastNonInteractiveSignInDateTime",
        Kind::DateTime,
        SIGN_IN_DATE,
    ),
    prop("lastSuccessfulSignInDateTime", Kind::DateTime, SIGN_IN_DATE),
];

/// User resource page, `authorizationInfo`: `certificateUserIds` supports `$filter` (`eq`,
/// `startsWith`) through `any`, in advanced mode.
const AUTHORIZATION_INFO: &[Property] = &[prop(
    "certificateUserIds",
    Kind::StringCollection,
    ops(NO, EQ.with(SW)),
)];

const LICENSE_ASSIGNMENT_STATE: &[Property] = &[
    prop("assignedByGroup", Kind::String, NOT_FILTERABLE),
    prop("disabledPlans", Kind::StringCollection, NOT_FILTERABLE),
    prop("error", Kind::String, NOT_FILTERABLE),
    prop("lastUpdatedDateTime", Kind::DateTime, NOT_FILTERABLE),
    prop("skuId", Kind::String, NOT_FILTERABLE),
    prop("state", Kind::String, NOT_FILTERABLE),
];

/// User resource page, `onPremisesProvisioningErrors`: "Supports `$filter` (`eq`, `not`,
/// `ge`, `le`)"; not in the advanced-query table, so advanced mode (as `assignedPlans`).
const ON_PREMISES_PROVISIONING_ERROR: &[Property] = &[
    prop("category", Kind::String, ops(NO, EQ)),
    prop("occurredDateTime", Kind::DateTime, ops(NO, RANGE)),
    prop("propertyCausingError", Kind::String, ops(NO, EQ)),
    prop("value", Kind::String, ops(NO, EQ)),
];

/// User resource page, `provisionedPlans`: "Supports `$filter` (`eq`, `not`, `ge`, `le`)";
/// not in the advanced-query table, so advanced mode (as `assignedPlans`).
const PROVISIONED_PLAN: &[Property] = &[
    prop("capabilityStatus", Kind::String, ops(NO, EQ)),
    prop("provisioningStatus", Kind::String, ops(NO, EQ)),
    prop("service", Kind::String, ops(NO, EQ)),
];

const SERVICE_PROVISIONING_ERROR: &[Property] = &[
    prop("createdDateTime", Kind::DateTime, NOT_FILTERABLE),
    prop("isResolved", Kind::Bool, NOT_FILTERABLE),
    prop("serviceInstance", Kind::String, NOT_FILTERABLE),
];

/// The manager, as `$expand=manager($select=…)` returns it.
const MANAGER: &[Property] = &[
    prop("id", Kind::String, NOT_FILTERABLE),
    prop("displayName", Kind::String, NOT_FILTERABLE),
    prop("mail", Kind::String, NOT_FILTERABLE),
    prop("userPrincipalName", Kind::String, NOT_FILTERABLE),
    prop("employeeId", Kind::String, NOT_FILTERABLE),
    prop("givenName", Kind::String, NOT_FILTERABLE),
    prop("surname", Kind::String, NOT_FILTERABLE),
    prop("jobTitle", Kind::String, NOT_FILTERABLE),
];

/// Every user property `GET /v1.0/users` can return (every property `$select` accepts on a
/// list of users), in alphabetical order.
pub const USER: &[Property] = &[
    // Advanced-query table: no null column for booleans.
    prop("accountEnabled", Kind::Bool, ops(EQ, NO)),
    prop("ageGroup", Kind::String, ENUM),
    prop(
        "assignedLicenses",
        Kind::ObjectCollection(ASSIGNED_LICENSE),
        ops(NO, COUNT),
    ),
    // Filtered through its parts; see ASSIGNED_PLAN_PART.
    prop(
        "assignedPlans",
        Kind::ObjectCollection(ASSIGNED_PLAN),
        NOT_FILTERABLE,
    ),
    prop(
        "authorizationInfo",
        Kind::Object(AUTHORIZATION_INFO),
        NOT_FILTERABLE,
    ),
    prop(
        "businessPhones",
        Kind::StringCollection,
        ops(NO, EQ.with(SW).with(COUNT)),
    ),
    prop("city", Kind::String, TEXT),
    prop("companyName", Kind::String, TEXT_ADV),
    prop("consentProvidedForMinor", Kind::String, ENUM),
    prop("country", Kind::String, TEXT),
    prop("createdDateTime", Kind::DateTime, ops(RANGE, EQ)),
    prop("creationType", Kind::String, ENUM),
    // Advanced-query page: filterable in advanced mode only, with attribute sets only the
    // tenant knows; the validator refuses it with its own message.
    prop(
        "customSecurityAttributes",
        Kind::Object(&[]),
        NOT_FILTERABLE,
    ),
    prop("deletedDateTime", Kind::DateTime, NOT_FILTERABLE),
    prop("department", Kind::String, TEXT),
    prop(
        "displayName",
        Kind::String,
        ops(EQ.with(SW).with(RANGE), NULL),
    ),
    prop("employeeHireDate", Kind::DateTime, ops(NO, EQ.with(RANGE))),
    prop("employeeId", Kind::String, TEXT),
    prop(
        "employeeLeaveDateTime",
        Kind::DateTime,
        ops(NO, EQ.with(RANGE)),
    ),
    prop(
        "employeeOrgData",
        Kind::Object(EMPLOYEE_ORG_DATA),
        NOT_FILTERABLE,
    ),
    prop("employeeType", Kind::String, ops(NO, EQ.with(SW))),
    prop("externalUserState", Kind::String, ENUM),
    prop(
        "externalUserStateChangeDateTime",
        Kind::DateTime,
        ops(NO, EQ.with(RANGE)),
    ),
    prop("faxNumber", Kind::String, TEXT_ADV),
    prop("givenName", Kind::String, TEXT),
    prop("id", Kind::String, ops(EQ, NO)),
    Property {
        filter: Filtering {
            not_in_advanced: true,
            ..ops(NO, NO)
        },
        ..prop(
            "identities",
            Kind::ObjectCollection(OBJECT_IDENTITY),
            NOT_FILTERABLE,
        )
    },
    // Advanced-query page: endsWith only on mail, otherMails, userPrincipalName,
    // proxyAddresses.
    prop(
        "imAddresses",
        Kind::StringCollection,
        ops(EQ.with(SW), COUNT),
    ),
    prop("isResourceAccount", Kind::Bool, NOT_FILTERABLE),
    prop("jobTitle", Kind::String, TEXT),
    prop("lastPasswordChangeDateTime", Kind::DateTime, NOT_FILTERABLE),
    prop("legalAgeGroupClassification", Kind::String, ops(NO, EQ)),
    prop(
        "licenseAssignmentStates",
        Kind::ObjectCollection(LICENSE_ASSIGNMENT_STATE),
        NOT_FILTERABLE,
    ),
    prop("mail", Kind::String, ops(EQ.with(SW), EW.with(NULL))),
    prop("mailNickname", Kind::String, TEXT),
    prop("manager", Kind::Object(MANAGER), NOT_FILTERABLE),
    prop("mobilePhone", Kind::String, TEXT_ADV),
    prop("officeLocation", Kind::String, TEXT_ADV),
    // User resource page: "Supports `$filter` (`eq`, `ne`, `not`, `in`, `startsWith`)";
    // absent from the advanced-query table, so advanced mode.
    prop(
        "onPremisesDistinguishedName",
        Kind::String,
        ops(NO, EQ.with(SW)),
    ),
    prop("onPremisesDomainName", Kind::String, NOT_FILTERABLE),
    prop(
        "onPremisesExtensionAttributes",
        Kind::Object(EXTENSION_ATTRIBUTES),
        NOT_FILTERABLE,
    ),
    prop("onPremisesImmutableId", Kind::String, ops(EQ, NO)),
    prop(
        "onPremisesLastSyncDateTime",
        Kind::DateTime,
        ops(NO, EQ.with(RANGE)),
    ),
    prop(
        "onPremisesProvisioningErrors",
        Kind::ObjectCollection(ON_PREMISES_PROVISIONING_ERROR),
        NOT_FILTERABLE,
    ),
    prop(
        "onPremisesSamAccountName",
        Kind::String,
        ops(NO, EQ.with(SW)),
    ),
    prop("onPremisesSecurityIdentifier", Kind::String, ops(EQ, NO)),
    prop(
        "onPremisesSyncEnabled",
        Kind::Bool,
        ON_PREMISES_SYNC_ENABLED,
    ),
    prop(
        "onPremisesUserPrincipalName",
        Kind::String,
        ops(NO, EQ.with(SW)),
    ),
    prop(
        "otherMails",
        Kind::StringCollection,
        ops(EQ.with(SW), EW.with(COUNT)),
    ),
    prop("passwordPolicies", Kind::String, ops(NO, EQ.with(NULL))),
    prop(
        "passwordProfile",
        Kind::Object(PASSWORD_PROFILE),
        NOT_FILTERABLE,
    ),
    prop("postalCode", Kind::String, TEXT_ADV),
    prop("preferredDataLocation", Kind::String, NOT_FILTERABLE),
    prop("preferredLanguage", Kind::String, TEXT_ADV),
    prop(
        "provisionedPlans",
        Kind::ObjectCollection(PROVISIONED_PLAN),
        NOT_FILTERABLE,
    ),
    prop(
        "proxyAddresses",
        Kind::StringCollection,
        ops(EQ.with(SW), EW.with(COUNT)),
    ),
    prop("securityIdentifier", Kind::String, ops(NO, EQ.with(SW))),
    prop(
        "serviceProvisioningErrors",
        Kind::ObjectCollection(SERVICE_PROVISIONING_ERROR),
        NOT_FILTERABLE,
    ),
    prop("showInAddressList", Kind::Bool, ops(NO, EQ)),
    prop(
        "signInActivity",
        Kind::Object(SIGN_IN_ACTIVITY),
        NOT_FILTERABLE,
    ),
    prop(
        "signInSessionsValidFromDateTime",
        Kind::DateTime,
        NOT_FILTERABLE,
    ),
    prop("state", Kind::String, ops(EQ.with(SW).with(RANGE), NULL)),
    prop("streetAddress", Kind::String, TEXT_ADV),
    prop("surname", Kind::String, TEXT),
    prop("usageLocation", Kind::String, TEXT),
    prop("userPrincipalName", Kind::String, ops(EQ.with(SW), EW)),
    prop("userType", Kind::String, ENUM_NULL),
];

/// The names an Oomnitza admin knows user fields by, and the Graph property each stands for.
/// `Connector Sync Time` is not a Graph property but the run's start time, built in.
pub const DISPLAY_NAMES: &[(&str, &str)] = &[
    ("Age Group", "ageGroup"),
    ("City", "city"),
    ("Company Name", "companyName"),
    ("Connector Sync Time", "connectorSyncTime"),
    ("Consent Provided For Minor", "consentProvidedForMinor"),
    ("Country", "country"),
    ("Creation Date", "createdDateTime"),
    ("Creation Type", "creationType"),
    ("Department", "department"),
    ("Display Name", "displayName"),
    ("Employee Hire Date", "employeeHireDate"),
    ("Employee ID", "employeeId"),
    ("Employee Type", "employeeType"),
    ("Fax Number", "faxNumber"),
    ("Given Name", "givenName"),
    ("ID", "id"),
    ("Is Account Enabled", "accountEnabled"),
    ("Is Resource Account", "isResourceAccount"),
    ("Job Title", "jobTitle"),
    ("Last Password Change Date", "lastPasswordChangeDateTime"),
    ("Legal Age Group", "legalAgeGroupClassification"),
    ("Mail", "mail"),
    ("Mail Nickname", "mailNickname"),
    ("Mobile Phone", "mobilePhone"),
    ("Office Location", "officeLocation"),
    ("Password Policies", "passwordPolicies"),
    ("Postal Code", "postalCode"),
    ("Preferred Language", "preferredLanguage"),
    ("State", "state"),
    ("Street", "streetAddress"),
    ("Surname", "surname"),
    ("Usage Location", "usageLocation"),
    ("User Principal Name", "userPrincipalName"),
    ("User Type", "userType"),
];

/// The Graph name for an Oomnitza display name (`Is Account Enabled` → `accountEnabled`),
/// ignoring case and spacing. Names that are already Graph names are not display names.
pub fn by_display_name(name: &str) -> Option<&'static str> {
    let squeeze = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '_')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = squeeze(name);
    DISPLAY_NAMES
        .iter()
        .find(|(display, graph)| squeeze(display) == wanted && !graph.eq_ignore_ascii_case(name))
        .map(|(_, graph)| *graph)
}

/// Stands for every directory extension property (`extension_<appId>_<name>`).
pub const EXTENSION: Property = prop("extension", Kind::Extension, ops(EQ, NULL));

/// Finds one of `properties` by name, ignoring case as Graph does.
pub fn lookup(properties: &'static [Property], name: &str) -> Option<&'static Property> {
    properties
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Finds a user property, or recognises a directory extension. Returns the property and its
/// name as Graph spells it (an extension's prefix and application id in lower case; its
/// attribute name as written, since only the tenant knows its spelling).
pub fn user_property(name: &str) -> Option<(&'static Property, std::borrow::Cow<'_, str>)> {
    if let Some(p) = lookup(USER, name) {
        return Some((p, p.name.into()));
    }
    if !is_extension_name(name) {
        return None;
    }
    let (app, attr) = name["extension_".len()..].split_once('_')?;
    let canonical = format!("extension_{}_{attr}", app.to_ascii_lowercase());
    Some((&EXTENSION, canonical.into()))
}

/// `extension_<application id without hyphens>_<name>`.
pub fn is_extension_name(name: &str) -> bool {
    let Some(rest) = name
        .get(.."extension_".len())
        .filter(|p| p.eq_ignore_ascii_case("extension_"))
        .map(|_| &name["extension_".len()..])
    else {
        return false;
    };
    let Some((app, attr)) = rest.split_once('_') else {
        return false;
    };
    app.len() == 32
        && app.bytes().all(|b| b.is_ascii_hexdigit())
        && !attr.is_empty()
        && attr.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The parts of a complex property, if it has any.
pub fn parts(kind: Kind) -> Option<&'static [Property]> {
    match kind {
        Kind::Object(p) | Kind::ObjectCollection(p) => Some(p),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_are_sorted_and_unique() {
        for pair in USER.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn display_names_name_catalogued_properties() {
        for (display, graph) in DISPLAY_NAMES {
            assert!(
                *graph == "connectorSyncTime" || lookup(USER, graph).is_some(),
                "{display} → {graph}"
            );
        }
        assert_eq!(
            by_display_name("is account enabled"),
            Some("accountEnabled")
        );
        assert_eq!(by_display_name("Street"), Some("streetAddress"));
        assert_eq!(by_display_name("mail"), None);
    }

    #[test]
    fn lookup_ignores_case_and_knows_extensions() {
        let (p, name) = user_property("DISPLAYNAME").unwrap();
        assert_eq!((p.name, name.as_ref()), ("displayName", "displayName"));
        let ext = "extension_0123456789abcdef0123456789abcdef_costCode";
        let (p, name) = user_property(ext).unwrap();
        assert_eq!((p.kind, name.as_ref()), (Kind::Extension, ext));
        let shouted = "EXTENSION_0123456789ABCDEF0123456789ABCDEF_costCode";
        assert_eq!(user_property(shouted).unwrap().1, ext);
        assert!(user_property("extension_123_x").is_none());
        assert!(lookup(EMPLOYEE_ORG_DATA, ext).is_none());
    }
}

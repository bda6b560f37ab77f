//! The filter language by example: a corpus of valid filters with their canonical text and
//! query mode, and of mistakes with the message, caret column and hint an admin should see.
//!
//! Each table is checked in one test that collects every mismatch before failing, so one
//! regression does not hide the others.

use std::panic::{AssertUnwindSafe, catch_unwind};

use odata::{Filter, FilterError};

const SKU: &str = "184efa21-98c3-4e5d-95ab-d07053a96e67";

/// `(input, canonical text, needs advanced query)`.
const VALID: &[(&str, &str, bool)] = &[
    // Required cases.
    (
        "accountEnabled eq true and userType eq 'Member'",
        "accountEnabled eq true and userType eq 'Member'",
        false,
    ),
    (
        "startsWith(displayName,'O''Brien')",
        "startsWith(displayName,'O''Brien')",
        false,
    ),
    (
        "assignedLicenses/any(x:x/skuId eq 184efa21-98c3-4e5d-95ab-d07053a96e67)",
        "assignedLicenses/any(x:x/skuId eq 184efa21-98c3-4e5d-95ab-d07053a96e67)",
        false,
    ),
    ("displayName ne 'x'", "displayName ne 'x'", true),
    (
        "employeeType in ('Admin', 'Staff', 'Faculty', 'Contingent Workers', 'EmpStudent')",
        "employeeType in ('Admin','Staff','Faculty','Contingent Workers','EmpStudent')",
        true,
    ),
    // Comparison operators, where the property allows them.
    ("department eq 'IT'", "department eq 'IT'", false),
    ("accountEnabled eq false", "accountEnabled eq false", false),
    ("accountEnabled ne true", "accountEnabled ne true", true),
    (
        "id ne '184efa21-98c3-4e5d-95ab-d07053a96e67'",
        "id ne '184efa21-98c3-4e5d-95ab-d07053a96e67'",
        true,
    ),
    (
        "displayName ge 'A' and displayName le 'M'",
        "displayName ge 'A' and displayName le 'M'",
        false,
    ),
    ("state ge 'A'", "state ge 'A'", false),
    (
        "createdDateTime ge 2024-01-01T00:00:00Z and createdDateTime le 2024-12-31T23:59:59Z",
        "createdDateTime ge 2024-01-01T00:00:00Z and createdDateTime le 2024-12-31T23:59:59Z",
        false,
    ),
    (
        "createdDateTime eq 2024-01-01T00:00:00Z",
        "createdDateTime eq 2024-01-01T00:00:00Z",
        true,
    ),
    (
        "employeeHireDate ge 2024-01-01T00:00:00Z",
        "employeeHireDate ge 2024-01-01T00:00:00Z",
        true,
    ),
    (
        "employeeLeaveDateTime le 2025-06-30T00:00:00Z",
        "employeeLeaveDateTime le 2025-06-30T00:00:00Z",
        true,
    ),
    (
        "onPremisesLastSyncDateTime ge 2024-01-01T00:00:00Z",
        "onPremisesLastSyncDateTime ge 2024-01-01T00:00:00Z",
        true,
    ),
    (
        "assignedLicenses/$count eq 0",
        "assignedLicenses/$count eq 0",
        true,
    ),
    (
        "assignedLicenses/$count ne 0",
        "assignedLicenses/$count ne 0",
        true,
    ),
    // Graph compares a count only with eq 0 or ne 0 (refused forms: INVALID below).
    ("otherMails/$count eq 0", "otherMails/$count eq 0", true),
    (
        "proxyAddresses/$count ne 0",
        "proxyAddresses/$count ne 0",
        true,
    ),
    ("imAddresses/$count eq 0", "imAddresses/$count eq 0", true),
    // null
    ("mail eq null", "mail eq null", true),
    ("mail ne null", "mail ne null", true),
    ("userType eq null", "userType eq null", true),
    ("department ne null", "department ne null", true),
    (
        "onPremisesSyncEnabled eq null",
        "onPremisesSyncEnabled eq null",
        true,
    ),
    // in (…)
    (
        "department in ('IT','Sales')",
        "department in ('IT','Sales')",
        false,
    ),
    ("department IN ( 'IT' )", "department in ('IT')", false),
    (
        "id in ('184efa21-98c3-4e5d-95ab-d07053a96e67','6fd2c87f-b296-42f0-b197-1e91e994b900')",
        "id in ('184efa21-98c3-4e5d-95ab-d07053a96e67','6fd2c87f-b296-42f0-b197-1e91e994b900')",
        false,
    ),
    ("employeeId in ('1', '2')", "employeeId in ('1','2')", false),
    // startsWith / endsWith in several casings.
    (
        "startsWith(department,'Fin')",
        "startsWith(department,'Fin')",
        false,
    ),
    (
        "STARTSWITH(department,'Fin')",
        "startsWith(department,'Fin')",
        false,
    ),
    (
        "startswith( department , 'Fin' )",
        "startsWith(department,'Fin')",
        false,
    ),
    (
        "StartsWith(department,'Fin')",
        "startsWith(department,'Fin')",
        false,
    ),
    (
        "endsWith(mail,'@contoso.com')",
        "endsWith(mail,'@contoso.com')",
        true,
    ),
    (
        "ENDSWITH(userPrincipalName,'@contoso.com')",
        "endsWith(userPrincipalName,'@contoso.com')",
        true,
    ),
    (
        "endswith(mail,'@contoso.com')",
        "endsWith(mail,'@contoso.com')",
        true,
    ),
    // not
    (
        "not (accountEnabled eq true)",
        "not (accountEnabled eq true)",
        true,
    ),
    (
        "not(accountEnabled eq true)",
        "not (accountEnabled eq true)",
        true,
    ),
    (
        "not startsWith(displayName,'A')",
        "not startsWith(displayName,'A')",
        true,
    ),
    (
        "not (otherMails/any(m:m eq 'a@b.com'))",
        "not otherMails/any(m:m eq 'a@b.com')",
        true,
    ),
    (
        "not not startsWith(displayName,'A')",
        "not (not startsWith(displayName,'A'))",
        true,
    ),
    // and / or precedence and parentheses.
    (
        "department eq 'a' or city eq 'b' and jobTitle eq 'c'",
        "department eq 'a' or city eq 'b' and jobTitle eq 'c'",
        false,
    ),
    (
        "(department eq 'a' or city eq 'b') and jobTitle eq 'c'",
        "(department eq 'a' or city eq 'b') and jobTitle eq 'c'",
        false,
    ),
    (
        "department eq 'a' and (city eq 'b' or jobTitle eq 'c')",
        "department eq 'a' and (city eq 'b' or jobTitle eq 'c')",
        false,
    ),
    (
        "(department eq 'a' and city eq 'b') or jobTitle eq 'c'",
        "department eq 'a' and city eq 'b' or jobTitle eq 'c'",
        false,
    ),
    (
        "(department eq 'a' or city eq 'b') or jobTitle eq 'c'",
        "(department eq 'a' or city eq 'b') or jobTitle eq 'c'",
        false,
    ),
    ("((department eq 'a'))", "department eq 'a'", false),
    (
        "displayName eq 'Fox' or displayName eq 'Hound' and not (city eq 'x')",
        "displayName eq 'Fox' or displayName eq 'Hound' and not (city eq 'x')",
        true,
    ),
    // Lambdas.
    (
        "otherMails/any(m:startsWith(m,'a'))",
        "otherMails/any(m:startsWith(m,'a'))",
        false,
    ),
    (
        "otherMails/any(m:m eq 'a@b.com')",
        "otherMails/any(m:m eq 'a@b.com')",
        false,
    ),
    (
        "otherMails/ANY ( m : m eq 'a' )",
        "otherMails/any(m:m eq 'a')",
        false,
    ),
    (
        "otherMails/any(m:endsWith(m,'@b.com'))",
        "otherMails/any(m:endsWith(m,'@b.com'))",
        true,
    ),
    (
        "proxyAddresses/any(p:startsWith(p,'smtp:'))",
        "proxyAddresses/any(p:startsWith(p,'smtp:'))",
        false,
    ),
    (
        "proxyAddresses/any(p:p eq 'SMTP:a@b.com')",
        "proxyAddresses/any(p:p eq 'SMTP:a@b.com')",
        false,
    ),
    (
        "imAddresses/any(i:i eq 'sip:a@b.com')",
        "imAddresses/any(i:i eq 'sip:a@b.com')",
        false,
    ),
    (
        "businessPhones/any(p:p eq '+1 555 0100')",
        "businessPhones/any(p:p eq '+1 555 0100')",
        true,
    ),
    (
        "assignedLicenses/any(x:x/skuId eq 184EFA21-98C3-4E5D-95AB-D07053A96E67)",
        "assignedLicenses/any(x:x/skuId eq 184efa21-98c3-4e5d-95ab-d07053a96e67)",
        false,
    ),
    (
        "assignedLicenses/any(x:x/skuId in (184efa21-98c3-4e5d-95ab-d07053a96e67, 6fd2c87f-b296-42f0-b197-1e91e994b900))",
        "assignedLicenses/any(x:x/skuId in (184efa21-98c3-4e5d-95ab-d07053a96e67,6fd2c87f-b296-42f0-b197-1e91e994b900))",
        false,
    ),
    (
        "identities/any(i:i/issuer eq 'x' and i/issuerAssignedId eq 'y')",
        "identities/any(i:i/issuer eq 'x' and i/issuerAssignedId eq 'y')",
        false,
    ),
    (
        "identities/any(c:c/issuerAssignedId eq 'j.smith@yahoo.com' and c/issuer eq 'My B2C tenant')",
        "identities/any(c:c/issuerAssignedId eq 'j.smith@yahoo.com' and c/issuer eq 'My B2C tenant')",
        false,
    ),
    // Navigation paths.
    (
        "onPremisesExtensionAttributes/extensionAttribute1 eq 'x'",
        "onPremisesExtensionAttributes/extensionAttribute1 eq 'x'",
        true,
    ),
    (
        "onPremisesExtensionAttributes/extensionAttribute15 eq null",
        "onPremisesExtensionAttributes/extensionAttribute15 eq null",
        true,
    ),
    (
        "startsWith(onPremisesExtensionAttributes/extensionAttribute7,'A')",
        "startsWith(onPremisesExtensionAttributes/extensionAttribute7,'A')",
        true,
    ),
    (
        "employeeOrgData/costCenter eq '1234'",
        "employeeOrgData/costCenter eq '1234'",
        true,
    ),
    (
        "employeeOrgData/division in ('R&D','Ops')",
        "employeeOrgData/division in ('R&D','Ops')",
        true,
    ),
    // Directory extensions.
    (
        "extension_0123456789abcdef0123456789abcdef_costCode eq 'x'",
        "extension_0123456789abcdef0123456789abcdef_costCode eq 'x'",
        false,
    ),
    (
        "EXTENSION_0123456789ABCDEF0123456789ABCDEF_flag eq true",
        "extension_0123456789abcdef0123456789abcdef_flag eq true",
        false,
    ),
    (
        "extension_0123456789abcdef0123456789abcdef_costCode eq null",
        "extension_0123456789abcdef0123456789abcdef_costCode eq null",
        true,
    ),
    (
        "extension_0123456789abcdef0123456789abcdef_level eq -3",
        "extension_0123456789abcdef0123456789abcdef_level eq -3",
        false,
    ),
    // Strings.
    (
        "displayName eq 'O''Brien'",
        "displayName eq 'O''Brien'",
        false,
    ),
    ("displayName eq ''''", "displayName eq ''''", false),
    ("displayName eq ''", "displayName eq ''", false),
    ("department eq 'a#b'", "department eq 'a#b'", false),
    (
        "displayName eq 'Zoë Åström'",
        "displayName eq 'Zoë Åström'",
        false,
    ),
    (
        "displayName eq '渡辺 太郎'",
        "displayName eq '渡辺 太郎'",
        false,
    ),
    (
        "displayName eq '🎉 party'",
        "displayName eq '🎉 party'",
        false,
    ),
    (
        "city eq 'São Paulo' or city eq 'Zürich'",
        "city eq 'São Paulo' or city eq 'Zürich'",
        false,
    ),
    // Date-times: fractional seconds and offsets are kept as written.
    (
        "createdDateTime ge 2024-01-01T00:00:00.1234567Z",
        "createdDateTime ge 2024-01-01T00:00:00.1234567Z",
        false,
    ),
    (
        "createdDateTime ge 2024-01-01T00:00:00+02:00",
        "createdDateTime ge 2024-01-01T00:00:00+02:00",
        false,
    ),
    (
        "createdDateTime le 2024-01-01T08:30:00.5-05:00",
        "createdDateTime le 2024-01-01T08:30:00.5-05:00",
        false,
    ),
    // Comments, line breaks and spacing.
    (
        "# staff only\ndepartment eq 'IT'",
        "department eq 'IT'",
        false,
    ),
    (
        "department eq 'IT' # trailing comment",
        "department eq 'IT'",
        false,
    ),
    (
        "department eq 'IT'\nand city eq 'Paris'",
        "department eq 'IT' and city eq 'Paris'",
        false,
    ),
    (
        "department eq 'IT' # one\n# two\nor city eq 'Paris'\n",
        "department eq 'IT' or city eq 'Paris'",
        false,
    ),
    (
        "department eq 'IT'\r\n\tand city eq 'Paris'\r\n",
        "department eq 'IT' and city eq 'Paris'",
        false,
    ),
    ("   department   eq   'IT'   ", "department eq 'IT'", false),
    (
        "department eq'IT'and city eq'x'",
        "department eq 'IT' and city eq 'x'",
        false,
    ),
    // Upper-case keywords and case-insensitive property names.
    (
        "DEPARTMENT EQ 'IT' AND CITY EQ 'Paris' OR NOT (JOBTITLE EQ 'x')",
        "department eq 'IT' and city eq 'Paris' or not (jobTitle eq 'x')",
        true,
    ),
    (
        "department eq 'IT' AnD city eq 'x' oR jobTitle eq 'y'",
        "department eq 'IT' and city eq 'x' or jobTitle eq 'y'",
        false,
    ),
    ("accountEnabled EQ FALSE", "accountEnabled eq false", false),
    ("accountEnabled eq True", "accountEnabled eq true", false),
    ("mail eq NULL", "mail eq null", true),
    ("DisplayName eq 'x'", "displayName eq 'x'", false),
    (
        "USERPRINCIPALNAME eq 'a@b.com'",
        "userPrincipalName eq 'a@b.com'",
        false,
    ),
    (
        "onpremisesextensionattributes/EXTENSIONATTRIBUTE1 eq 'x'",
        "onPremisesExtensionAttributes/extensionAttribute1 eq 'x'",
        true,
    ),
    (
        "ASSIGNEDLICENSES/any(x:x/SKUID eq 184efa21-98c3-4e5d-95ab-d07053a96e67)",
        "assignedLicenses/any(x:x/skuId eq 184efa21-98c3-4e5d-95ab-d07053a96e67)",
        false,
    ),
    // Standard vs advanced per property.
    ("companyName eq 'Contoso'", "companyName eq 'Contoso'", true),
    ("officeLocation eq 'B1'", "officeLocation eq 'B1'", true),
    (
        "onPremisesImmutableId eq 'abc='",
        "onPremisesImmutableId eq 'abc='",
        false,
    ),
    (
        "onPremisesSyncEnabled eq true",
        "onPremisesSyncEnabled eq true",
        false,
    ),
    (
        "mailNickname eq 'jdoe' and usageLocation eq 'US'",
        "mailNickname eq 'jdoe' and usageLocation eq 'US'",
        false,
    ),
    ("ageGroup eq 'Adult'", "ageGroup eq 'Adult'", false),
    (
        "externalUserState eq 'PendingAcceptance'",
        "externalUserState eq 'PendingAcceptance'",
        false,
    ),
    (
        "onPremisesSamAccountName eq 'jdoe'",
        "onPremisesSamAccountName eq 'jdoe'",
        true,
    ),
];

/// `(input, message fragment, 1-based caret column, hint fragment)`. Inputs are ASCII so the
/// byte offset is the column.
const INVALID: &[(&str, &str, usize, Option<&str>)] = &[
    // Required cases.
    (
        "accountEnabled eq 'true'",
        "is a boolean, but this is a quoted string",
        19,
        Some("write true without quotes"),
    ),
    (
        "department = 'IT'",
        "`=` is not an OData operator",
        12,
        Some("write `eq`"),
    ),
    (
        "jobTitle eq 'x' and",
        "expected a condition after `and`",
        20,
        None,
    ),
    ("foo eq 1", "`foo` is not a user property", 1, None),
    // Symbols from other languages.
    (
        "department == 'IT'",
        "`==` is not an OData operator",
        12,
        Some("write `eq`"),
    ),
    (
        "department != 'IT'",
        "`!=` is not an OData operator",
        12,
        Some("write `ne`"),
    ),
    (
        "department <> 'IT'",
        "`<>` is not an OData operator",
        12,
        Some("write `ne`"),
    ),
    (
        "department >= 'IT'",
        "`>=` is not an OData operator",
        12,
        Some("write `ge`"),
    ),
    (
        "department eq 'IT' && city eq 'x'",
        "`&&` is not OData",
        20,
        Some("write `and`"),
    ),
    (
        "department eq 'IT' || city eq 'x'",
        "`||` is not OData",
        20,
        Some("write `or`"),
    ),
    // Structure.
    (
        "(department eq 'IT'",
        "this `(` is never closed",
        1,
        Some("add the missing `)`"),
    ),
    (
        "department eq 'IT' and (city eq 'x'",
        "this `(` is never closed",
        24,
        None,
    ),
    (
        "department eq 'IT')",
        "this `)` has no matching `(`",
        19,
        None,
    ),
    (")", "expected a condition", 1, None),
    (
        "department eq 'IT' city eq 'x'",
        "unexpected `city` after a complete condition",
        20,
        Some("join conditions with `and` or `or`"),
    ),
    (
        "department eq 'IT' (",
        "unexpected `(` after a complete condition",
        20,
        None,
    ),
    (
        "department eq 'IT' or",
        "expected a condition after `or`",
        22,
        None,
    ),
    (
        "department eq 'IT' and not",
        "expected a condition after `not`",
        27,
        None,
    ),
    (
        "and department eq 'x'",
        "expected a condition, found `and`",
        1,
        None,
    ),
    (
        "department eq 'IT' and or city eq 'x'",
        "expected a condition after `and`, found `or`",
        24,
        None,
    ),
    (
        "'IT' eq department",
        "a condition starts with a property name",
        1,
        Some("department eq 'Sales'"),
    ),
    (
        "not department eq 'IT'",
        "`not` binds tighter than comparisons",
        1,
        Some("not (department eq 'IT')"),
    ),
    // Values.
    (
        "department eq 'IT",
        "this string is never closed",
        15,
        Some("''"),
    ),
    (
        "department eq \"IT\"",
        "OData strings use single quotes",
        15,
        Some("write 'IT'"),
    ),
    (
        "department eq \"IT",
        "OData strings use single quotes",
        15,
        Some("write 'IT'"),
    ),
    (
        "department eq IT",
        "found the bare word `IT`",
        15,
        Some("'IT'"),
    ),
    ("department eq", "expected a value after `eq`", 14, None),
    ("department eq 1.5", "only whole numbers", 15, None),
    (
        "department eq 99999999999999999999",
        "is not a valid number",
        15,
        None,
    ),
    (
        "department eq true",
        "`department` is text, but this is a boolean",
        15,
        Some("'true'"),
    ),
    (
        "employeeId eq 12345",
        "`employeeId` is text, but this is a number",
        15,
        Some("'12345'"),
    ),
    (
        "accountEnabled eq 1",
        "`accountEnabled` is a boolean, but this is a number",
        19,
        Some("true or false"),
    ),
    (
        "accountEnabled eq 'yes'",
        "`accountEnabled` is a boolean",
        19,
        Some("true or false"),
    ),
    // Date-times.
    (
        "createdDateTime ge 2024-01-01",
        "is a date without a time",
        20,
        Some("2024-01-01T00:00:00Z"),
    ),
    (
        "createdDateTime ge 2024-01-01T00:00:00",
        "is not a valid date-time",
        20,
        None,
    ),
    (
        "createdDateTime ge 2024-02-30T00:00:00Z",
        "is not a valid date-time",
        20,
        None,
    ),
    (
        "createdDateTime ge 2024-01-01t00:00:00z",
        "not a valid date-time",
        20,
        Some("2024-01-01T00:00:00Z"),
    ),
    (
        "createdDateTime ge '2024-01-01T00:00:00Z'",
        "is a date-time, but this is a quoted string",
        20,
        Some("without quotes"),
    ),
    ("createdDateTime ge null", "null", 20, None),
    // GUIDs.
    (
        "assignedLicenses/any(x:x/skuId eq '184efa21-98c3-4e5d-95ab-d07053a96e67')",
        "is a GUID, but this is a quoted string",
        35,
        Some("write GUIDs without quotes"),
    ),
    (
        "assignedLicenses/any(x:x/skuId eq 184efa21-98c3-4e5d-95ab-d07053a96e6)",
        "GUID",
        35,
        None,
    ),
    (
        "id eq 184efa21-98c3-4e5d-95ab-d07053a96e67",
        "`id` is text, but this is a GUID",
        7,
        Some("'184efa21-98c3-4e5d-95ab-d07053a96e67'"),
    ),
    // Unknown names.
    (
        "departmnet eq 'IT'",
        "`departmnet` is not a user property",
        1,
        Some("did you mean `department`?"),
    ),
    (
        "acountEnabled eq true",
        "`acountEnabled` is not a user property",
        1,
        Some("did you mean `accountEnabled`?"),
    ),
    (
        "userPrincipalNam eq 'x'",
        "is not a user property",
        1,
        Some("did you mean `userPrincipalName`?"),
    ),
    (
        "employeeOrgData/costcentre eq 'x'",
        "`costcentre` is not a part of `employeeOrgData`",
        17,
        Some("did you mean `costCenter`?"),
    ),
    (
        "extension_123_x eq 'a'",
        "is not a user property",
        1,
        Some("extension_<appId>_<name>"),
    ),
    ("foo gt 1", "`foo` is not a user property", 1, None),
    // Operators a property does not support.
    (
        "endsWith(jobTitle,'x')",
        "`jobTitle` does not support endsWith",
        10,
        Some("startsWith"),
    ),
    (
        "accountEnabled ge true",
        "`accountEnabled` does not support ge",
        1,
        None,
    ),
    (
        "startsWith(accountEnabled,'t')",
        "`accountEnabled` does not support startsWith",
        12,
        None,
    ),
    (
        "userPrincipalName eq null",
        "`userPrincipalName` does not support eq null",
        1,
        None,
    ),
    (
        "extension_0123456789abcdef0123456789abcdef_x ge 1",
        "does not support ge",
        1,
        None,
    ),
    (
        "displayName gt 'a'",
        "Graph does not support `gt`",
        1,
        Some("use `ge`"),
    ),
    (
        "createdDateTime lt 2024-01-01T00:00:00Z",
        "Graph does not support `lt`",
        1,
        Some("use `le`"),
    ),
    ("accountEnabled gt true", "gt", 1, Some("supports eq")),
    // Functions.
    (
        "contains(displayName,'a')",
        "Graph does not support `contains`",
        1,
        Some("startsWith"),
    ),
    (
        "substringof('a',displayName)",
        "Graph does not support `substringof`",
        1,
        None,
    ),
    (
        "lower(displayName) eq 'a'",
        "unknown function `lower`",
        1,
        None,
    ),
    (
        "startsWith('a',displayName)",
        "the first argument of startsWith must be a property",
        12,
        None,
    ),
    ("startsWith(displayName)", "expected `,`", 23, None),
    (
        "startsWith(displayName,'a','b')",
        "expected `)` to close startsWith(",
        27,
        None,
    ),
    (
        "startsWith(displayName,1)",
        "startsWith compares text, not a number",
        24,
        Some("startsWith(displayName,'1')"),
    ),
    // in (…)
    ("department in ()", "the `in` list is empty", 16, None),
    (
        "department in 'IT'",
        "`in` takes a list in parentheses",
        15,
        None,
    ),
    (
        "department in ('a' 'b')",
        "expected `,` or `)` in the `in` list",
        20,
        None,
    ),
    // Collections and lambdas.
    (
        "otherMails eq 'a'",
        "`otherMails` is a collection",
        1,
        Some("otherMails/any("),
    ),
    (
        "assignedLicenses/skuId eq 184efa21-98c3-4e5d-95ab-d07053a96e67",
        "`assignedLicenses` is a collection",
        1,
        Some("assignedLicenses/any(x:x/skuId"),
    ),
    (
        "otherMails/all(m:m eq 'a')",
        "Graph does not support `all`",
        1,
        Some("use `any`"),
    ),
    (
        "otherMails/any(m:x eq 'a')",
        "refer to each element of `otherMails` as `m`",
        18,
        None,
    ),
    (
        "otherMails/any(m:m eq 'a') and m eq 'b'",
        "`m` is not a user property",
        32,
        None,
    ),
    (
        "assignedLicenses/any(x:x eq 'a')",
        "elements of `assignedLicenses` are objects; name a part",
        24,
        Some("x/skuId"),
    ),
    (
        "otherMails/any(m:m/x eq 'a')",
        "elements of `otherMails` are text and have no parts",
        20,
        None,
    ),
    (
        "assignedLicenses/any(x:x/disabledPlans/any(p:p eq 'a'))",
        "lambda inside a lambda",
        24,
        None,
    ),
    (
        "department/any(d:d eq 'x')",
        "`department` is not a collection",
        1,
        None,
    ),
    (
        "otherMails/any(m m eq 'a')",
        "expected `:` after the lambda variable `m`",
        18,
        None,
    ),
    ("otherMails/any()", "expected a variable name", 16, None),
    (
        "otherMails/any(m:m eq 'a'",
        "the lambda is not closed",
        15,
        None,
    ),
    (
        "otherMails/$count eq null",
        "a count is never null",
        1,
        None,
    ),
    (
        "otherMails/$count eq 'a'",
        "`otherMails/$count` is a count",
        22,
        None,
    ),
    // identities cannot be combined with advanced-only constructs.
    (
        "identities/any(i:i/issuer eq 'x' and i/issuerAssignedId eq 'y') and displayName ne 'x'",
        "`identities` in a query that needs advanced mode",
        1,
        None,
    ),
    (
        "not identities/any(i:i/issuer eq 'x' and i/issuerAssignedId eq 'y')",
        "`identities` in a query that needs advanced mode",
        5,
        None,
    ),
    (
        "identities/any(i:i/issuer eq 'x' and i/issuerAssignedId eq 'y') or companyName eq 'c'",
        "`identities` in a query that needs advanced mode",
        1,
        None,
    ),
    // identities: only issuer and issuerAssignedId, together.
    (
        "identities/any(i:i/issuer eq 'x')",
        "only by issuer and issuerAssignedId together",
        1,
        Some("i/issuerAssignedId eq"),
    ),
    (
        "identities/any(i:i/signInType eq 'emailAddress' or i/issuerAssignedId eq 'a@b.com')",
        "only by issuer and issuerAssignedId together",
        1,
        None,
    ),
    // Properties Graph cannot filter on, and objects without a part.
    (
        "manager eq 'x'",
        "Graph cannot filter users by `manager`",
        1,
        None,
    ),
    (
        "manager/id eq 'x'",
        "Graph cannot filter users by `manager",
        1,
        None,
    ),
    (
        "passwordProfile eq 'x'",
        "`passwordProfile` has parts; name one",
        1,
        None,
    ),
    (
        "assignedLicenses/$count gt 0",
        "only with eq 0 or ne 0, not `gt 0`",
        1,
        None,
    ),
    (
        "proxyAddresses/$count le 1",
        "only with eq 0 or ne 0, not `le 1`",
        1,
        None,
    ),
    (
        "otherMails/$count eq 2",
        "only with eq 0 or ne 0, not `eq 2`",
        1,
        None,
    ),
    (
        "lastPasswordChangeDateTime ge 2024-01-01T00:00:00Z",
        "Graph cannot filter users by `lastPasswordChangeDateTime`",
        1,
        None,
    ),
    (
        "isResourceAccount eq true",
        "Graph cannot filter users by `isResourceAccount`",
        1,
        None,
    ),
    (
        "employeeOrgData eq 'x'",
        "`employeeOrgData` has parts; name one",
        1,
        Some("employeeOrgData/costCenter"),
    ),
    (
        "onPremisesExtensionAttributes eq 'x'",
        "`onPremisesExtensionAttributes` has parts; name one",
        1,
        Some("onPremisesExtensionAttributes/extensionAttribute1"),
    ),
];

/// Compiles without letting a panic escape, so one crash is reported like any other mismatch.
fn compile(input: &str) -> Result<Result<Option<Filter>, Vec<FilterError>>, String> {
    catch_unwind(AssertUnwindSafe(|| Filter::compile(input))).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn show(error: &FilterError) -> String {
    format!(
        "col {}: {} (hint: {})",
        error.span.start + 1,
        error.message,
        error.hint.as_deref().unwrap_or("none")
    )
}

fn report(kind: &str, total: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {total} {kind} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn corpus_is_large_enough() {
    assert!(VALID.len() >= 65, "{} valid cases", VALID.len());
    assert!(INVALID.len() >= 35, "{} invalid cases", INVALID.len());
    assert!(INVALID.iter().all(|(input, ..)| input.is_ascii()));
}

#[test]
fn valid_filters_compile_to_canonical_text() {
    let mut failures = Vec::new();
    for &(input, canonical, advanced) in VALID {
        match compile(input) {
            Err(panic) => failures.push(format!("{input:?}\n  panicked: {panic}")),
            Ok(Ok(None)) => failures.push(format!("{input:?}\n  compiled to no filter")),
            Ok(Err(errors)) => {
                let shown: Vec<_> = errors.iter().map(show).collect();
                failures.push(format!("{input:?}\n  rejected: {}", shown.join("; ")));
            }
            Ok(Ok(Some(filter))) => {
                if filter.canonical() != canonical {
                    failures.push(format!(
                        "{input:?}\n  canonical: {:?}\n  expected:  {canonical:?}",
                        filter.canonical()
                    ));
                }
                if filter.needs_advanced_query() != advanced {
                    failures.push(format!(
                        "{input:?}\n  advanced: {}, expected {advanced}",
                        filter.needs_advanced_query()
                    ));
                }
                // The canonical text is itself valid and canonical.
                match compile(canonical) {
                    Ok(Ok(Some(again))) if again.canonical() == canonical => {}
                    other => failures.push(format!(
                        "{input:?}\n  canonical text {canonical:?} does not compile to itself: {:?}",
                        other.map(|r| r.map(|f| f.map(|f| f.canonical().to_string())))
                    )),
                }
            }
        }
    }
    report("valid", VALID.len(), &failures);
}

#[test]
fn invalid_filters_are_refused_with_a_located_message() {
    let mut failures = Vec::new();
    for &(input, message, column, hint) in INVALID {
        let errors = match compile(input) {
            Err(panic) => {
                failures.push(format!("{input:?}\n  panicked: {panic}"));
                continue;
            }
            Ok(Ok(filter)) => {
                failures.push(format!(
                    "{input:?}\n  accepted as {:?}",
                    filter.as_ref().map(Filter::canonical)
                ));
                continue;
            }
            Ok(Err(errors)) => errors,
        };
        let Some(first) = errors.first() else {
            failures.push(format!("{input:?}\n  refused with no error"));
            continue;
        };
        let mut wrong = Vec::new();
        if !first.message.contains(message) {
            wrong.push(format!("message should contain {message:?}"));
        }
        if first.span.start + 1 != column {
            wrong.push(format!("caret should be at column {column}"));
        }
        if first.span.end < first.span.start || first.span.end > input.len() {
            wrong.push(format!("span {:?} is outside the input", first.span));
        }
        if let Some(hint) = hint
            && !first.hint.as_deref().is_some_and(|h| h.contains(hint))
        {
            wrong.push(format!("hint should contain {hint:?}"));
        }
        if !wrong.is_empty() {
            let shown: Vec<_> = errors.iter().map(show).collect();
            failures.push(format!(
                "{input:?}\n  {}\n  got: {}",
                wrong.join("; "),
                shown.join("\n       ")
            ));
        }
    }
    report("invalid", INVALID.len(), &failures);
}

#[test]
fn blank_comment_only_and_default_mean_no_filter() {
    for text in [
        "",
        "   \n\t",
        "# all users\n",
        "Default",
        "DEFAULT",
        "  default # note",
    ] {
        assert!(
            matches!(Filter::compile(text), Ok(None)),
            "{text:?} should mean no filter"
        );
    }
}

#[test]
fn properties_are_top_level_names_in_graph_spelling() {
    let filter = Filter::compile(&format!(
        "DEPARTMENT eq 'IT' and assignedlicenses/any(x:x/skuId eq {SKU}) \
         or employeeOrgData/costCenter eq '1' or otherMails/$count eq 0"
    ))
    .expect("valid")
    .expect("a filter");
    let properties: Vec<_> = filter.properties().iter().map(String::as_str).collect();
    assert_eq!(
        properties,
        [
            "assignedLicenses",
            "department",
            "employeeOrgData",
            "otherMails"
        ]
    );
}

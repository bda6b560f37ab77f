//! The catalogue against Microsoft's published rules, one filter per row: whether Graph
//! accepts it, and in which query mode, or which message userload refuses it with.
//!
//! Each row's comment names the rule it follows:
//! - UP: the v1.0 `user` resource page, the `$filter` note of the named property;
//! - AQ: "Advanced query capabilities on Microsoft Entra ID objects", the scenarios table
//!   ("scenarios") or the list above the user table ("rules");
//! - FQ: "Use the $filter query parameter" (lambdas, `all`, literals);
//! - SVC: where the live service is stricter than the pages (see the comment in catalog.rs).
//!
//! The test collects every mismatch before failing, so one wrong row does not hide others.

use odata::Filter;

const SKU: &str = "184efa21-98c3-4e5d-95ab-d07053a96e67";

#[derive(Debug, Clone, Copy)]
enum Verdict {
    /// Accepted in a plain request.
    Standard,
    /// Accepted with `ConsistencyLevel: eventual` and `$count=true`.
    Advanced,
    /// Refused; the message or hint contains this text.
    Refused(&'static str),
}

use Verdict::{Advanced as A, Refused as R, Standard as S};

const ROWS: &[(&str, Verdict)] = &[
    // ---- Text properties.
    ("city eq 'Paris'", S),                                  // UP city: eq
    ("city in ('Paris','Lyon')", S),                         // AQ rules: in wherever eq by default
    ("startsWith(city,'Pa')", S),                            // UP city: startsWith
    ("city eq null", A),    // UP city: eq on null values (AQ table: advanced)
    ("city ne 'Paris'", A), // AQ rules: ne only advanced
    ("not (city eq 'Paris')", A), // AQ rules: not only advanced
    ("endsWith(city,'is')", R("does not support endsWith")), // AQ rules: endsWith only mail, otherMails, UPN, proxyAddresses
    ("city gt 'A'", R("does not support `gt`")),             // FQ: gt/lt not on user properties
    ("department eq 'Sales'", S),                            // UP department: eq
    ("startsWith(department,'Sa')", S),                      // UP department: startsWith
    ("department eq null", A),                               // UP department: eq on null values
    ("endsWith(department,'es')", R("does not support endsWith")), // AQ rules: endsWith list
    ("givenName eq 'Ann'", S),                               // UP givenName
    ("surname eq 'Lee'", S),                                 // UP surname
    ("jobTitle eq 'Engineer'", S),                           // UP jobTitle
    ("startsWith(jobTitle,'Eng')", S),                       // UP jobTitle: startsWith
    ("mailNickname eq 'ann'", S),                            // UP mailNickname
    ("usageLocation eq 'FR'", S),                            // UP usageLocation
    ("country eq 'France'", S),                              // UP country
    ("employeeId eq '123'", S),                              // UP employeeId
    ("startsWith(employeeId,'12')", S),                      // UP employeeId: startsWith
    ("employeeId eq null", A),                               // UP employeeId: eq on null values
    ("displayName eq 'Ann Lee'", S),                         // UP displayName
    ("displayName ge 'A'", S),                               // UP displayName: ge, le
    ("displayName le 'M'", S),                               // UP displayName: ge, le
    ("displayName eq null", A),                              // UP displayName: eq on null values
    ("state eq 'Texas'", S),                                 // UP state
    ("companyName eq 'Contoso'", A),                         // AQ table: companyName advanced
    ("startsWith(companyName,'Con')", A),                    // AQ table: companyName advanced
    ("companyName eq null", A),                              // UP companyName: eq on null values
    ("mobilePhone eq '+1 555'", A),                          // AQ table: mobilePhone advanced
    ("officeLocation eq 'B1'", A),                           // AQ table: officeLocation advanced
    ("postalCode eq '75001'", A),                            // AQ table: postalCode advanced
    ("preferredLanguage eq 'fr-FR'", A),                     // AQ table: preferredLanguage advanced
    ("streetAddress eq '1 Main St'", A),                     // AQ table: streetAddress advanced
    ("faxNumber eq '1'", A),                                 // UP faxNumber (SVC: advanced)
    ("employeeType eq 'Staff'", A),                          // AQ table: employeeType advanced
    ("employeeType in ('Admin','Staff')", A),                // AQ table: employeeType in advanced
    ("onPremisesSamAccountName eq 'ann'", A), // AQ table: onPremisesSamAccountName advanced
    ("startsWith(onPremisesUserPrincipalName,'a')", A), // UP onPremisesUserPrincipalName
    ("id eq 'a1b2'", S),                      // UP id: eq
    ("id eq null", R("does not support eq null")), // UP id: no null values
    ("onPremisesImmutableId eq 'abc='", S),   // UP onPremisesImmutableId
    ("onPremisesSecurityIdentifier eq 'S-1-5'", S), // UP onPremisesSecurityIdentifier
    ("city eq 42", R("is text")),             // FQ: strings are quoted
    // ---- mail and userPrincipalName: the endsWith properties.
    ("mail eq 'a@contoso.com'", S),              // UP mail: eq
    ("startsWith(mail,'a')", S),                 // UP mail: startsWith
    ("endsWith(mail,'@contoso.com')", A),        // AQ scenarios: endsWith advanced
    ("mail eq null", A),                         // UP mail: eq on null values
    ("userPrincipalName eq 'a@contoso.com'", S), // UP userPrincipalName: eq
    ("endsWith(userPrincipalName,'#EXT#@contoso.com')", A), // AQ: endsWith on userPrincipalName
    ("startsWith(userPrincipalName,'a')", S),    // UP userPrincipalName: startsWith
    ("userPrincipalName eq null", R("does not support eq null")), // UP userPrincipalName: no null values
    ("endsWith(mail,42)", R("endsWith compares text")), // FQ: function arguments are strings
    // ---- Enumerations kept as text.
    ("userType eq 'Guest'", S),                          // UP userType: eq
    ("userType in ('Guest','Member')", S),               // UP userType: in
    ("userType eq null", A),                             // UP userType: eq on null values
    ("userType ne 'Guest'", A),                          // AQ rules: ne advanced
    ("ageGroup eq 'adult'", S),                          // UP ageGroup: eq
    ("ageGroup eq null", R("does not support eq null")), // AQ table: ageGroup has no null values
    ("consentProvidedForMinor eq 'granted'", S),         // UP consentProvidedForMinor
    (
        "consentProvidedForMinor eq null",
        R("does not support eq null"),
    ), // AQ table: no null values
    ("creationType eq 'Invitation'", S),                 // UP creationType
    ("creationType eq null", R("does not support eq null")), // AQ table: no null values
    ("externalUserState eq 'PendingAcceptance'", S),     // UP externalUserState
    ("externalUserState eq null", R("does not support eq null")), // AQ table: no null values
    ("legalAgeGroupClassification eq 'adult'", A), // UP legalAgeGroupClassification (SVC: advanced)
    (
        "legalAgeGroupClassification eq null",
        R("does not support eq null"),
    ), // no null values
    ("passwordPolicies eq 'DisablePasswordExpiration'", A), // UP passwordPolicies (AQ table: advanced)
    ("passwordPolicies eq null", A), // UP passwordPolicies: eq on null values
    // ---- Booleans.
    ("accountEnabled eq true", S),       // UP accountEnabled: eq
    ("accountEnabled eq false", S),      // UP accountEnabled: eq
    ("accountEnabled ne true", A),       // AQ: the "ne" example of the page
    ("not (accountEnabled eq true)", A), // AQ rules: not advanced
    ("accountEnabled eq null", R("does not support eq null")), // AQ table: booleans have no null values
    ("accountEnabled eq 'true'", R("write true without quotes")), // FQ: booleans unquoted
    ("accountEnabled eq 1", R("is a boolean")),                // FQ: booleans are true/false
    ("showInAddressList eq false", A), // AQ table: showInAddressList advanced
    ("showInAddressList eq null", R("does not support eq null")), // AQ table: no null values
    ("onPremisesSyncEnabled eq true", S), // UP onPremisesSyncEnabled: eq
    ("onPremisesSyncEnabled eq null", A), // UP onPremisesSyncEnabled: eq on null values (see catalog.rs)
    (
        "isResourceAccount eq true",
        R("cannot filter users by `isResourceAccount`"),
    ), // UP: reserved, not filterable
    // ---- Date-times.
    ("createdDateTime ge 2024-01-01T00:00:00Z", S), // UP createdDateTime: ge
    ("createdDateTime le 2024-01-01T00:00:00Z", S), // UP createdDateTime: le
    ("createdDateTime eq 2024-01-01T00:00:00Z", A), // UP createdDateTime: eq (SVC: advanced)
    ("createdDateTime gt 2024-01-01T00:00:00Z", R("use `ge`")), // FQ: gt not on user properties
    (
        "createdDateTime ge '2024-01-01T00:00:00Z'",
        R("write date-times without quotes"),
    ), // FQ: date-times unquoted
    ("createdDateTime eq null", R("does not support eq null")), // AQ table: no null values
    ("employeeHireDate ge 2024-01-01T00:00:00Z", A), // AQ table: employeeHireDate advanced
    ("employeeHireDate eq 2024-01-01T00:00:00Z", A), // AQ table: employeeHireDate eq advanced
    ("employeeLeaveDateTime le 2024-01-01T00:00:00Z", A), // UP employeeLeaveDateTime
    ("onPremisesLastSyncDateTime ge 2024-01-01T00:00:00Z", A), // AQ table: advanced
    ("externalUserStateChangeDateTime ge 2024-01-01T00:00:00Z", A), // UP externalUserStateChangeDateTime
    (
        "lastPasswordChangeDateTime le 2024-01-01T00:00:00Z",
        R("cannot filter users by `lastPasswordChangeDateTime`"),
    ), // UP: no $filter note
    (
        "deletedDateTime ge 2024-01-01T00:00:00Z",
        R("cannot filter users by `deletedDateTime`"),
    ), // only on deleted items, not /users
    // ---- Sign-in activity: alone in the filter.
    (
        "signInActivity/lastSignInDateTime le 2024-01-01T00:00:00Z",
        S,
    ), // UP signInActivity: ge, le
    (
        "signInActivity/lastSignInDateTime ge 2024-01-01T00:00:00Z",
        S,
    ), // UP signInActivity: ge, le
    (
        "signInActivity/lastSignInDateTime eq 2024-01-01T00:00:00Z",
        S,
    ), // UP signInActivity: eq
    (
        "signInActivity/lastNonInteractiveSignInDateTime le 2024-01-01T00:00:00Z",
        S,
    ), // UP signInActivity; Entra "inactive accounts" page
    (
        "signInActivity/lastSuccessfulSignInDateTime le 2024-01-01T00:00:00Z",
        S,
    ), // UP signInActivity; Entra "inactive accounts" page
    (
        "signInActivity/lastSignInDateTime le 2024-01-01T00:00:00Z and signInActivity/lastNonInteractiveSignInDateTime le 2024-01-01T00:00:00Z",
        S,
    ), // one property, two parts
    (
        "signInActivity/lastSignInDateTime ne 2024-01-01T00:00:00Z",
        A,
    ), // UP signInActivity: ne (AQ rules: advanced)
    (
        "signInActivity/lastSignInDateTime le 2024-01-01T00:00:00Z and accountEnabled eq true",
        R("only when no other property is in the filter"),
    ), // UP: not with any other filterable properties
    (
        "userType eq 'Member' or signInActivity/lastSuccessfulSignInDateTime le 2024-01-01T00:00:00Z",
        R("also reads userType"),
    ), // UP: not with other properties
    (
        "signInActivity/lastSignInDateTime gt 2024-01-01T00:00:00Z",
        R("use `ge`"),
    ), // FQ: gt not on user properties
    (
        "signInActivity/lastSignInDateTime le '2024-01-01'",
        R("write date-times without quotes"),
    ), // FQ: date-times unquoted
    (
        "signInActivity/lastSignInRequestId eq 'x'",
        R("not a part of `signInActivity`"),
    ), // UP: request ids not filterable
    ("signInActivity eq null", R("has parts; name one")), // UP signInActivity: filtered by its dates
    // ---- Collections of text.
    ("otherMails/any(m:m eq 'a@b.com')", S), // UP otherMails: eq
    ("otherMails/any(m:startsWith(m,'a'))", S), // UP otherMails: startsWith
    ("otherMails/any(m:endsWith(m,'@b.com'))", A), // AQ rules: endsWith on otherMails
    ("proxyAddresses/any(p:p eq 'SMTP:a@b.com')", S), // UP proxyAddresses: eq
    ("proxyAddresses/any(p:startsWith(p,'smtp:'))", S), // UP proxyAddresses: startsWith
    ("proxyAddresses/any(p:endsWith(p,'OnMicrosoft.com'))", A), // AQ scenarios: endsWith on a collection
    ("imAddresses/any(i:i eq 'sip:a@b.com')", S),               // UP imAddresses: eq
    (
        "imAddresses/any(i:endsWith(i,'b.com'))",
        R("does not support endsWith"),
    ), // AQ rules: endsWith list excludes imAddresses
    ("businessPhones/any(p:p eq '+1 555')", A), // UP businessPhones: eq (SVC: advanced)
    (
        "businessPhones/any(p:endsWith(p,'555'))",
        R("does not support endsWith"),
    ), // AQ rules: endsWith list excludes businessPhones
    ("otherMails eq 'a@b.com'", R("is a collection")), // FQ: collections through a lambda
    (
        "otherMails/all(m:m eq 'a@b.com')",
        R("does not support `all`"),
    ), // FQ: all not on user properties
    ("not (otherMails/any(m:m eq 'a@b.com'))", A), // AQ rules: not with any
    // ---- /$count.
    ("assignedLicenses/$count eq 0", A), // AQ scenarios: $count in $filter
    ("assignedLicenses/$count ne 0", A), // AQ rules: eq 0, ne 0
    ("assignedLicenses/$count eq 1", R("only with eq 0 or ne 0")), // AQ rules (see catalog::COUNT_VALUES)
    ("assignedLicenses/$count ge 2", R("only with eq 0 or ne 0")), // AQ rules
    ("assignedLicenses/$count gt 0", R("ne 0 for at least one")),  // AQ rules
    ("proxyAddresses/$count eq 0", A),                             // AQ rules: empty collections
    ("otherMails/$count ne 0", A),                                 // AQ rules: empty collections
    ("proxyAddresses/$count lt 3", R("only with eq 0 or ne 0")),   // AQ rules
    ("otherMails/$count eq null", R("a count is never null")),     // a count is a number
    ("otherMails/$count eq '0'", R("is a count")),                 // a count is a number
    (
        "department/$count eq 0",
        R("only collections can be counted"),
    ), // FQ: $count on collections
    // ---- assignedLicenses and assignedPlans lambdas.
    (
        "assignedLicenses/any(x:x/skuId eq 184efa21-98c3-4e5d-95ab-d07053a96e67)",
        S,
    ), // UP assignedLicenses: eq
    (
        "assignedLicenses/any(x:x/skuId eq '184efa21-98c3-4e5d-95ab-d07053a96e67')",
        R("write GUIDs without quotes"),
    ), // FQ: GUIDs unquoted
    (
        "not (assignedLicenses/any(x:x/skuId eq 184efa21-98c3-4e5d-95ab-d07053a96e67))",
        A,
    ), // UP assignedLicenses: not (advanced)
    (
        "assignedLicenses/any(x:x/disabledPlans/any(p:p eq 'x'))",
        R("lambda inside a lambda"),
    ), // FQ: no nested lambdas
    (
        "assignedPlans/any(x:x/servicePlanId eq 184efa21-98c3-4e5d-95ab-d07053a96e67)",
        A,
    ), // SVC: assignedPlans advanced
    ("assignedPlans/any(x:x/capabilityStatus eq 'Enabled')", A), // SVC: assignedPlans advanced
    ("assignedPlans/any(x:x/service eq 'exchange')", A),         // SVC: assignedPlans advanced
    (
        "assignedPlans/any(x:x/assignedDateTime ge 2024-01-01T00:00:00Z)",
        R("cannot filter users by `x/assignedDateTime` in `assignedPlans`"),
    ), // UP assignedPlan: eq only
    (
        "assignedPlans/any(x:x eq 'a')",
        R("elements of `assignedPlans` are objects"),
    ), // objects need a part
    ("provisionedPlans/any(p:p/service eq 'exchange')", A),      // UP provisionedPlans: eq
    (
        "provisionedPlans/any(p:p/provisioningStatus eq 'Success')",
        A,
    ), // UP provisionedPlans: eq
    (
        "onPremisesProvisioningErrors/any(e:e/category eq 'PropertyConflict')",
        A,
    ), // UP onPremisesProvisioningErrors: eq
    (
        "onPremisesProvisioningErrors/any(e:e/occurredDateTime ge 2024-01-01T00:00:00Z)",
        A,
    ), // UP onPremisesProvisioningErrors: ge, le
    (
        "licenseAssignmentStates/any(l:l/state eq 'Error')",
        R("cannot filter users by `l/state` in `licenseAssignmentStates`"),
    ), // UP: no $filter note
    (
        "serviceProvisioningErrors/any(e:e/isResolved eq false)",
        R("cannot filter users by `e/isResolved`"),
    ), // UP: no $filter note
    // ---- identities.
    (
        "identities/any(i:i/issuer eq 'contoso.com' and i/issuerAssignedId eq 'ann')",
        S,
    ), // UP identities: eq
    (
        "identities/any(i:i/issuer eq 'contoso.com')",
        R("only by issuer and issuerAssignedId together"),
    ), // UP identities
    (
        "identities/any(i:i/issuer eq 'c' and i/issuerAssignedId eq 'a') and city ne 'x'",
        R("advanced mode"),
    ), // graph.md: identities not with advanced headers
    // ---- Extension attributes (on-premises and directory extensions).
    (
        "onPremisesExtensionAttributes/extensionAttribute1 eq 'x'",
        A,
    ), // AQ table: onPremisesExtensionAttributes advanced
    (
        "onPremisesExtensionAttributes/extensionAttribute15 eq null",
        A,
    ), // UP: eq on null values
    (
        "startsWith(onPremisesExtensionAttributes/extensionAttribute7,'a')",
        A,
    ), // catalogue: startsWith (advanced)
    (
        "onPremisesExtensionAttributes/extensionAttribute16 eq 'x'",
        R("not a part of `onPremisesExtensionAttributes`"),
    ), // only 1..15
    (
        "onPremisesExtensionAttributes eq 'x'",
        R("has parts; name one"),
    ), // parts only
    (
        "endsWith(onPremisesExtensionAttributes/extensionAttribute1,'x')",
        R("does not support endsWith"),
    ), // AQ rules: endsWith list
    (
        "extension_0123456789abcdef0123456789abcdef_costCode eq 'A1'",
        S,
    ), // extension properties: eq
    (
        "extension_0123456789abcdef0123456789abcdef_costCode eq null",
        A,
    ), // extension properties: eq null advanced
    ("extension_0123456789abcdef0123456789abcdef_flag eq true", S), // extension: any primitive
    ("extension_123_costCode eq 'A1'", R("not a user property")),   // app id is 32 hex digits
    // ---- Nested objects.
    ("employeeOrgData/costCenter eq 'CC1'", A), // UP employeeOrgData: eq (advanced)
    ("employeeOrgData/division eq 'R&D'", A),   // UP employeeOrgData: eq (advanced)
    ("startsWith(employeeOrgData/division,'R')", A), // catalogue: startsWith (advanced)
    ("employeeOrgData/costcenter eq 'CC1'", A), // names match regardless of case
    (
        "employeeOrgData/manager eq 'x'",
        R("not a part of `employeeOrgData`"),
    ), // only costCenter, division
    ("employeeOrgData eq 'x'", R("has parts; name one")), // parts only
    ("passwordProfile/forceChangePasswordNextSignIn eq true", A), // UP passwordProfile: eq (see catalog.rs)
    (
        "passwordProfile/forceChangePasswordNextSignInWithMfa eq true",
        R("cannot filter users by `passwordProfile/forceChangePasswordNextSignInWithMfa`"),
    ), // not listed
    (
        "passwordProfile/password eq 'x'",
        R("not a part of `passwordProfile`"),
    ), // never returned
    (
        "authorizationInfo/certificateUserIds/any(c:c eq 'X509:<PN>ann@contoso.com')",
        A,
    ), // UP authorizationInfo: eq (advanced)
    (
        "authorizationInfo/certificateUserIds/any(c:startsWith(c,'X509:'))",
        A,
    ), // UP authorizationInfo: startsWith
    (
        "authorizationInfo/certificateUserIds/any(c:endsWith(c,'.com'))",
        R("does not support endsWith"),
    ), // AQ rules: endsWith list
    (
        "authorizationInfo/certificateUserIds eq 'x'",
        R("use a lambda"),
    ), // collections through a lambda
    (
        "manager/displayName eq 'Ann'",
        R("cannot filter users by `manager/displayName`"),
    ), // graph.md: manager not filterable
    (
        "onPremisesDistinguishedName eq 'CN=Ann,OU=Staff,DC=contoso,DC=com'",
        A,
    ), // UP onPremisesDistinguishedName (advanced)
    ("startsWith(onPremisesDistinguishedName,'CN=Ann')", A), // UP onPremisesDistinguishedName: startsWith
    (
        "onPremisesDomainName eq 'contoso.com'",
        R("cannot filter users by `onPremisesDomainName`"),
    ), // UP: no $filter note
    // ---- customSecurityAttributes: filterable in advanced mode, refused here.
    (
        "customSecurityAttributes/Engineering/Project eq 'Baker'",
        R("cannot filter on `customSecurityAttributes`"),
    ), // AQ; see validate.rs
    (
        "customSecurityAttributes/Engineering/Level eq 3",
        R("put the users in a group"),
    ), // AQ; refused with a way out
    // ---- Combinations.
    ("accountEnabled eq true and userType eq 'Member'", S), // each part standard
    (
        "accountEnabled eq true and endsWith(mail,'@contoso.com')",
        A,
    ), // one advanced part makes the filter advanced
    ("department eq 'Sales' or companyName eq 'Contoso'", A), // advanced-only property
    (
        "startsWith(displayName,'A') and (city eq 'Paris' or city eq 'Lyon')",
        S,
    ), // nesting
    ("unknownProp eq 'x'", R("not a user property")),       // unknown property
];

#[test]
fn catalogue_follows_microsofts_rules() {
    assert!(ROWS.len() >= 120, "only {} rows", ROWS.len());
    let _ = SKU;
    let mut failures = Vec::new();
    for (filter, verdict) in ROWS {
        let got = Filter::compile(filter);
        let ok = match (verdict, &got) {
            (Verdict::Standard, Ok(Some(f))) => !f.needs_advanced_query(),
            (Verdict::Advanced, Ok(Some(f))) => f.needs_advanced_query(),
            (Verdict::Refused(fragment), Err(errors)) => errors.iter().any(|e| {
                e.message.contains(fragment)
                    || e.hint.as_deref().is_some_and(|h| h.contains(fragment))
            }),
            _ => false,
        };
        if !ok {
            let shown = match &got {
                Ok(Some(f)) => format!(
                    "accepted ({})",
                    if f.needs_advanced_query() {
                        "advanced"
                    } else {
                        "standard"
                    }
                ),
                Ok(None) => "no filter".to_string(),
                Err(errors) => errors
                    .iter()
                    .map(|e| format!("{} [{}]", e.message, e.hint.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            failures.push(format!("{filter}\n    want {verdict:?}\n    got  {shown}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows wrong:\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n")
    );
}

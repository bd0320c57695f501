//! Plain Rust mirrors of the WIT contract's records.
//!
//! They are the SDK's own types rather than the `wit-bindgen` output so that a
//! policy compiles and runs natively (no bindings there) and so that the
//! helpers below have a stable home. Converting from the bindings moves the
//! strings; nothing is copied.

use alloc::string::String;
use alloc::vec::Vec;

/// Seconds since the Unix epoch, UTC.
///
/// The host picks [`Request::now`]; a policy has no clock of its own, so every
/// time rule is arithmetic on timestamps like these.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::RequestBuilder;
///
/// let req = RequestBuilder::new("file-recovery").build();
/// let ticket = req.ticket.as_ref().unwrap();
/// let ticket_age: Timestamp = req.now - ticket.opened_at;
/// assert_eq!(ticket_age, 3600); // the builder's ticket was opened an hour ago
/// ```
pub type Timestamp = u64;

/// Where a ticket stands in its workflow.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::RequestBuilder;
///
/// let req = RequestBuilder::new("file-recovery")
///     .ticket(TicketState::OnHold, 3, Some("alice"))
///     .build();
/// let state = req.ticket.as_ref().map(|t| t.state);
/// assert_eq!(state, Some(TicketState::OnHold));
/// // On hold is neither active nor finished.
/// assert!(!TicketState::OnHold.is_active() && !TicketState::OnHold.is_finished());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketState {
    /// Created, nobody has started on it.
    Open,
    /// Someone is working on it.
    InProgress,
    /// Parked, waiting on someone.
    OnHold,
    /// Work done.
    Resolved,
    /// Finished and archived.
    Closed,
}

impl TicketState {
    /// `open` or `in-progress`: the ticket can justify access right now.
    ///
    /// ```
    /// use jitgate_sdk::TicketState;
    ///
    /// assert!(TicketState::Open.is_active());
    /// assert!(TicketState::InProgress.is_active());
    /// assert!(!TicketState::OnHold.is_active());
    /// assert!(!TicketState::Resolved.is_active());
    /// ```
    pub fn is_active(self) -> bool {
        matches!(self, TicketState::Open | TicketState::InProgress)
    }

    /// `resolved` or `closed`: access for this ticket should end.
    ///
    /// ```
    /// use jitgate_sdk::TicketState;
    ///
    /// assert!(TicketState::Resolved.is_finished());
    /// assert!(TicketState::Closed.is_finished());
    /// assert!(!TicketState::OnHold.is_finished());
    /// ```
    pub fn is_finished(self) -> bool {
        matches!(self, TicketState::Resolved | TicketState::Closed)
    }
}

/// The ticket the access is for.
///
/// [`Request::ticket`] is `None` when the caller sent no ticket; most policies
/// deny or ask for approval then.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::RequestBuilder;
///
/// let req = RequestBuilder::new("file-recovery")
///     .ticket(TicketState::InProgress, 1, Some("bob"))
///     .build();
/// let ticket: &Ticket = req.ticket.as_ref().unwrap();
/// assert_eq!(ticket.id, "INC-1");
/// assert_eq!(ticket.priority, 1);
/// // Assigned to someone other than the requester (alice).
/// assert_ne!(ticket.assignee.as_deref(), Some(req.subject.id.as_str()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The ticketing system's identifier.
    pub id: String,
    /// Its current state.
    pub state: TicketState,
    /// 1 is the highest priority, 5 the lowest.
    pub priority: u8,
    /// Who the ticket is assigned to, if anyone.
    pub assignee: Option<String>,
    /// When it was opened.
    pub opened_at: Timestamp,
}

impl Ticket {
    /// `open` or `in-progress`.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery")
    ///     .ticket(TicketState::Closed, 3, None)
    ///     .build();
    /// assert!(!req.ticket.unwrap().is_active());
    /// ```
    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }
}

/// A person or a workload.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::RequestBuilder;
///
/// let req = RequestBuilder::new("file-recovery")
///     .subject("backup-bot")
///     .kind(SubjectKind::Service)
///     .build();
/// assert_eq!(req.subject.kind, SubjectKind::Service);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    /// A person.
    Human,
    /// A non-human identity.
    Service,
}

/// Who asks for access.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::RequestBuilder;
///
/// let req = RequestBuilder::new("file-recovery")
///     .roles(&["helpdesk", "dba"])
///     .groups(&["emea-support"])
///     .build();
/// let who: &Subject = &req.subject;
/// assert_eq!(who.id, "alice");
/// assert!(who.has_role("dba") && who.in_group("emea-support"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Stable identifier.
    pub id: String,
    /// Person or workload.
    pub kind: SubjectKind,
    /// Job roles.
    pub roles: Vec<String>,
    /// Directory groups.
    pub groups: Vec<String>,
    /// Last multi-factor authentication.
    pub mfa_at: Option<Timestamp>,
}

impl Subject {
    /// The subject holds `role` (exact, case-sensitive match).
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery").roles(&["helpdesk"]).build();
    /// assert!(req.subject.has_role("helpdesk"));
    /// assert!(!req.subject.has_role("Helpdesk"));
    /// ```
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The subject holds at least one of `roles`.
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("saas-admin").roles(&["sre"]).build();
    /// assert!(req.subject.has_any_role(&["helpdesk", "sre"]));
    /// assert!(!req.subject.has_any_role(&["helpdesk", "dba"]));
    /// assert!(!req.subject.has_any_role(&[])); // an empty list matches nobody
    /// ```
    pub fn has_any_role(&self, roles: &[&str]) -> bool {
        roles.iter().any(|r| self.has_role(r))
    }

    /// The subject is a member of `group` (exact, case-sensitive match).
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery").groups(&["tier2"]).build();
    /// assert!(req.subject.in_group("tier2"));
    /// assert!(!req.subject.in_group("tier3"));
    /// ```
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The subject is a workload, not a person.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let bot = RequestBuilder::new("file-recovery").kind(SubjectKind::Service).build();
    /// assert!(bot.subject.is_service());
    /// let person = RequestBuilder::new("file-recovery").build();
    /// assert!(!person.subject.is_service());
    /// ```
    pub fn is_service(&self) -> bool {
        self.kind == SubjectKind::Service
    }
}

/// One request for elevated access.
///
/// In tests, build one with [`testing::RequestBuilder`](crate::testing::RequestBuilder)
/// rather than spelling out every field.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::RequestBuilder;
///
/// let req: Request = RequestBuilder::new("file-recovery")
///     .entitlement("restore-operator")
///     .requested_ttl(7200)
///     .build();
/// assert_eq!(req.task, "file-recovery");
/// assert_eq!(req.resource, "fileserver-01");
/// assert_eq!(req.entitlement, "restore-operator");
/// assert_eq!(req.requested_ttl, 7200);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The caller's identifier of this request.
    pub id: String,
    /// Who asks.
    pub subject: Subject,
    /// The kind of work, e.g. `file-recovery`.
    pub task: String,
    /// The target system.
    pub resource: String,
    /// What to grant on the resource.
    pub entitlement: String,
    /// Why the access is needed.
    pub justification: String,
    /// Requested duration in seconds.
    pub requested_ttl: u32,
    /// The ticket, if any.
    pub ticket: Option<Ticket>,
    /// Decision time chosen by the host.
    pub now: Timestamp,
    /// Extra key/value context.
    pub attributes: Vec<(String, String)>,
}

impl Request {
    /// There is a ticket and it is `open` or `in-progress`.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// assert!(RequestBuilder::new("file-recovery").build().ticket_active());
    /// assert!(!RequestBuilder::new("file-recovery").no_ticket().build().ticket_active());
    /// let parked = RequestBuilder::new("file-recovery")
    ///     .ticket(TicketState::OnHold, 3, Some("alice"))
    ///     .build();
    /// assert!(!parked.ticket_active());
    /// ```
    pub fn ticket_active(&self) -> bool {
        self.ticket.as_ref().is_some_and(Ticket::is_active)
    }

    /// There is a ticket and it is `resolved` or `closed`.
    ///
    /// Not the negation of [`Request::ticket_active`]: a request without a
    /// ticket, or with one on hold, is neither.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let done = RequestBuilder::new("file-recovery")
    ///     .ticket(TicketState::Resolved, 3, Some("alice"))
    ///     .build();
    /// assert!(done.ticket_finished());
    /// assert!(!RequestBuilder::new("file-recovery").no_ticket().build().ticket_finished());
    /// ```
    pub fn ticket_finished(&self) -> bool {
        self.ticket.as_ref().is_some_and(|t| t.state.is_finished())
    }

    /// The first value of attribute `key`.
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery")
    ///     .attribute("tz-offset-minutes", "60")
    ///     .attribute("tz-offset-minutes", "120")
    ///     .build();
    /// assert_eq!(req.attribute("tz-offset-minutes"), Some("60"));
    /// assert_eq!(req.attribute("site"), None);
    /// ```
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The justification without surrounding whitespace.
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery").justification("  INC-1 restore \n").build();
    /// assert_eq!(req.trimmed_justification(), "INC-1 restore");
    /// ```
    pub fn trimmed_justification(&self) -> &str {
        self.justification.trim()
    }

    /// Length in characters (not bytes) of the trimmed justification.
    ///
    /// Use it for "say at least N characters why" rules, so that padding with
    /// spaces does not count and non-ASCII text is not over-counted.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery").justification("  Größe  ").build();
    /// assert_eq!(req.justification_chars(), 5); // 6 bytes, 5 characters
    ///
    /// let verdict = if req.justification_chars() < 20 {
    ///     Verdict::deny("say in at least 20 characters why you need access")
    /// } else {
    ///     Verdict::not_applicable()
    /// };
    /// assert!(verdict.is_deny());
    /// ```
    pub fn justification_chars(&self) -> usize {
        self.trimmed_justification().chars().count()
    }
}

/// The terms of an immediate grant, carried by [`Verdict::Allow`].
///
/// Build it with [`Verdict::allow`] or [`Verdict::allow_until_ticket_closed`];
/// in tests, unwrap it with [`testing::expect_allow`](crate::testing::expect_allow).
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::expect_allow;
///
/// let terms: GrantTerms = expect_allow(Verdict::allow_until_ticket_closed(900, "INC-1"));
/// assert_eq!(terms.ttl, 900);
/// assert_eq!(terms.reason, "INC-1");
/// assert!(terms.revoke_on_ticket_close);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTerms {
    /// Seconds the access may last.
    pub ttl: u32,
    /// Why the policy allows it.
    pub reason: String,
    /// End the grant when its ticket is resolved or closed.
    pub revoke_on_ticket_close: bool,
}

/// What approval a request needs, carried by [`Verdict::RequireApproval`].
///
/// Build it with [`Verdict::require_approval`]; in tests, unwrap it with
/// [`testing::expect_approval`](crate::testing::expect_approval).
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::expect_approval;
///
/// let terms: ApprovalTerms =
///     expect_approval(Verdict::require_approval(&["dba-leads"], 2, 3600, "production database"));
/// assert_eq!(terms.approver_groups, ["dba-leads"]);
/// assert_eq!(terms.min_approvals, 2);
/// assert_eq!(terms.ttl, 3600);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalTerms {
    /// An approver must belong to one of these groups.
    pub approver_groups: Vec<String>,
    /// Distinct approvers needed (at least 1).
    pub min_approvals: u8,
    /// Seconds the access may last once approved.
    pub ttl: u32,
    /// Why approval is needed.
    pub reason: String,
    /// End the grant, once approved, when its ticket is resolved or closed
    /// (contract 0.2.0).
    pub revoke_on_ticket_close: bool,
}

/// A policy's answer.
///
/// Use the constructors ([`Verdict::allow`], [`Verdict::deny`],
/// [`Verdict::require_approval`], ...) rather than the variants: they take
/// `&str` and build the owned terms.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::RequestBuilder;
///
/// fn judge(req: &Request) -> Verdict {
///     if !req.ticket_active() {
///         return Verdict::deny("file recovery needs an open ticket");
///     }
///     Verdict::allow(clamp_ttl(req.requested_ttl, 3600), "ticketed file recovery")
/// }
///
/// let verdict = judge(&RequestBuilder::new("file-recovery").no_ticket().build());
/// assert_eq!(verdict, Verdict::deny("file recovery needs an open ticket"));
/// let verdict = judge(&RequestBuilder::new("file-recovery").requested_ttl(7200).build());
/// assert!(matches!(verdict, Verdict::Allow(GrantTerms { ttl: 3600, .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Grant now on these terms.
    Allow(GrantTerms),
    /// Refuse, with the reason.
    Deny(String),
    /// Grant only after these approvals.
    RequireApproval(ApprovalTerms),
    /// No opinion.
    NotApplicable,
}

impl Verdict {
    /// Allow for `ttl` seconds; the grant outlives its ticket's closing.
    ///
    /// The host grants the smallest of `ttl`, the requested TTL, the policy's
    /// [`PolicyInfo::max_ttl`] and its configured caps (0 denies); cap it
    /// yourself with [`clamp_ttl`](crate::clamp_ttl) so the verdict says what
    /// will really be granted.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::expect_allow;
    ///
    /// let terms = expect_allow(Verdict::allow(1800, "helpdesk file recovery"));
    /// assert_eq!(terms.ttl, 1800);
    /// assert_eq!(terms.reason, "helpdesk file recovery");
    /// assert!(!terms.revoke_on_ticket_close);
    /// ```
    #[cfg_attr(feature = "coverage", track_caller)]
    pub fn allow(ttl: u32, reason: impl Into<String>) -> Self {
        crate::coverage::reached();
        Verdict::Allow(GrantTerms {
            ttl,
            reason: reason.into(),
            revoke_on_ticket_close: false,
        })
    }

    /// Allow for `ttl` seconds, and end the grant when its ticket closes.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::expect_allow;
    ///
    /// let terms = expect_allow(Verdict::allow_until_ticket_closed(3600, "INC-1 restore"));
    /// assert_eq!(terms.ttl, 3600);
    /// assert!(terms.revoke_on_ticket_close);
    /// ```
    #[cfg_attr(feature = "coverage", track_caller)]
    pub fn allow_until_ticket_closed(ttl: u32, reason: impl Into<String>) -> Self {
        crate::coverage::reached();
        Verdict::Allow(GrantTerms {
            ttl,
            reason: reason.into(),
            revoke_on_ticket_close: true,
        })
    }

    /// Refuse, saying why: the reason goes into the decision the requester
    /// reads, so say what would make the request acceptable.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::expect_deny;
    ///
    /// let reason = expect_deny(Verdict::deny("only the helpdesk role may recover files"));
    /// assert_eq!(reason, "only the helpdesk role may recover files");
    /// ```
    #[cfg_attr(feature = "coverage", track_caller)]
    pub fn deny(reason: impl Into<String>) -> Self {
        crate::coverage::reached();
        Verdict::Deny(reason.into())
    }

    /// Require `min` distinct approvers from any of `groups`; once
    /// approved, the grant outlives its ticket's closing (see
    /// [`Verdict::require_approval_until_ticket_closed`] to end it with
    /// the ticket).
    ///
    /// - `groups`: the approver groups; a member of any one of them may
    ///   approve (the host never lets anyone approve their own request).
    /// - `min`: how many distinct approvers must approve (at least 1).
    /// - `ttl`: seconds the access lasts once approved, counted from when the
    ///   grant becomes active; the host lowers it further to the requested TTL,
    ///   [`PolicyInfo::max_ttl`] and its configured caps.
    /// - `reason`: why approval is needed; it goes into the decision's reasons,
    ///   which the requester and the approvers read.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::{RequestBuilder, expect_approval};
    ///
    /// let req = RequestBuilder::new("saas-admin").requested_ttl(7200).build();
    /// let verdict = Verdict::require_approval(
    ///     &["helpdesk-leads", "it-managers"],
    ///     2,
    ///     clamp_ttl(req.requested_ttl, 3600),
    ///     "SaaS admin rights need two leads",
    /// );
    /// let terms = expect_approval(verdict);
    /// assert_eq!(terms.approver_groups, ["helpdesk-leads", "it-managers"]);
    /// assert_eq!(terms.min_approvals, 2);
    /// assert_eq!(terms.ttl, 3600);
    /// assert_eq!(terms.reason, "SaaS admin rights need two leads");
    /// ```
    #[cfg_attr(feature = "coverage", track_caller)]
    pub fn require_approval(groups: &[&str], min: u8, ttl: u32, reason: impl Into<String>) -> Self {
        crate::coverage::reached();
        Verdict::RequireApproval(ApprovalTerms {
            approver_groups: groups.iter().map(|g| String::from(*g)).collect(),
            min_approvals: min,
            ttl,
            reason: reason.into(),
            revoke_on_ticket_close: false,
        })
    }

    /// Require `min` distinct approvers from any of `groups`, and end the
    /// approved grant when its ticket closes (contract 0.2.0; a host reads
    /// the flag as false from modules built against 0.1.0).
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::expect_approval;
    ///
    /// let verdict = Verdict::require_approval_until_ticket_closed(
    ///     &["saas-owners"],
    ///     1,
    ///     1800,
    ///     "tenant writes need an owner",
    /// );
    /// let terms = expect_approval(verdict);
    /// assert!(terms.revoke_on_ticket_close);
    /// assert_eq!(terms.approver_groups, ["saas-owners"]);
    /// ```
    #[cfg_attr(feature = "coverage", track_caller)]
    pub fn require_approval_until_ticket_closed(
        groups: &[&str],
        min: u8,
        ttl: u32,
        reason: impl Into<String>,
    ) -> Self {
        crate::coverage::reached();
        Verdict::RequireApproval(ApprovalTerms {
            approver_groups: groups.iter().map(|g| String::from(*g)).collect(),
            min_approvals: min,
            ttl,
            reason: reason.into(),
            revoke_on_ticket_close: true,
        })
    }

    /// No opinion on this request: another policy of the set decides.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    ///
    /// let v = Verdict::not_applicable();
    /// assert_eq!(v, Verdict::NotApplicable);
    /// assert_eq!((v.reason(), v.ttl()), (None, None));
    /// ```
    #[cfg_attr(feature = "coverage", track_caller)]
    pub fn not_applicable() -> Self {
        crate::coverage::reached();
        Verdict::NotApplicable
    }

    /// The verdict's reason text, if it has one.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    ///
    /// assert_eq!(Verdict::deny("no ticket").reason(), Some("no ticket"));
    /// assert_eq!(Verdict::allow(60, "ok").reason(), Some("ok"));
    /// assert_eq!(Verdict::not_applicable().reason(), None);
    /// ```
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Allow(t) => Some(&t.reason),
            Verdict::Deny(r) => Some(r),
            Verdict::RequireApproval(t) => Some(&t.reason),
            Verdict::NotApplicable => None,
        }
    }

    /// The TTL an allow or approval carries.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    ///
    /// assert_eq!(Verdict::allow(900, "ok").ttl(), Some(900));
    /// assert_eq!(Verdict::require_approval(&["leads"], 1, 600, "night").ttl(), Some(600));
    /// assert_eq!(Verdict::deny("no").ttl(), None);
    /// ```
    pub fn ttl(&self) -> Option<u32> {
        match self {
            Verdict::Allow(t) => Some(t.ttl),
            Verdict::RequireApproval(t) => Some(t.ttl),
            _ => None,
        }
    }

    /// Is this a deny?
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    ///
    /// assert!(Verdict::deny("no ticket").is_deny());
    /// assert!(!Verdict::not_applicable().is_deny());
    /// ```
    pub fn is_deny(&self) -> bool {
        matches!(self, Verdict::Deny(_))
    }
}

/// What a policy says about itself, returned by [`Policy::info`](crate::Policy::info).
///
/// ```
/// use jitgate_sdk::prelude::*;
///
/// let info = PolicyInfo::new("night-shift", "1.2.0", "approval outside hours", &["*"], 3600);
/// assert_eq!(info.tasks, ["*"]); // judges every task
/// assert_eq!(info.max_ttl, 3600);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Unique name within a policy set.
    pub name: String,
    /// The policy's own version.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// Tasks judged; `*` means every task.
    pub tasks: Vec<String>,
    /// Longest grant this policy will allow, in seconds.
    pub max_ttl: u32,
}

impl PolicyInfo {
    /// Build the info from borrowed parts.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    ///
    /// let info = PolicyInfo::new(
    ///     "only-helpdesk",
    ///     "1.0.0",
    ///     "helpdesk may recover files",
    ///     &["file-recovery", "saas-admin"],
    ///     3600,
    /// );
    /// assert_eq!(info.name, "only-helpdesk");
    /// assert_eq!(info.tasks, ["file-recovery", "saas-admin"]);
    /// ```
    pub fn new(name: &str, version: &str, description: &str, tasks: &[&str], max_ttl: u32) -> Self {
        PolicyInfo {
            name: String::from(name),
            version: String::from(version),
            description: String::from(description),
            tasks: tasks.iter().map(|t| String::from(*t)).collect(),
            max_ttl,
        }
    }
}

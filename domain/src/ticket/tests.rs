use chrono::NaiveDate;
use uuid::Uuid;

use super::*;
use crate::aggregate::given_when_then::given;
use crate::wallet::{Category, LimitKey, Period};

fn user(n: u128) -> UserId {
    UserId(Uuid::from_u128(n))
}

const CUSTOMER: u128 = 1;
const AGENT: u128 = 2;
const OTHER_AGENT: u128 = 3;
const ADMIN: u128 = 4;

fn text(raw: &str) -> TicketText {
    TicketText::parse(raw).expect("valid")
}

fn crossing() -> Crossing {
    Crossing {
        limit: LimitKey {
            period: Period::Monthly { first_day: 1 },
            category: Some(Category::parse("Food").expect("valid")),
        },
        limit_amount: "500".parse().expect("decimal"),
        period_start: NaiveDate::from_ymd_opt(2026, 11, 1).expect("a day"),
        spent: "540".parse().expect("decimal"),
        expense_id: Uuid::from_u128(70),
        cause: Uuid::from_u128(71),
    }
}

fn opened() -> TicketEvent {
    TicketEvent::TicketOpened {
        customer: user(CUSTOMER),
        crossing: crossing(),
    }
}

fn assigned(to: u128, previous: Option<u128>) -> TicketEvent {
    TicketEvent::TicketAssigned {
        assignee: user(to),
        previous: previous.map(user),
        by: Actor::System,
    }
}

fn resolved() -> TicketEvent {
    TicketEvent::TicketResolved {
        by: Actor::Agent(user(AGENT)),
        resolution: text("Talked it through; limit raised."),
    }
}

#[test]
fn a_crossing_opens_a_ticket_once() {
    given::<Ticket>([])
        .when(TicketCommand::Open {
            customer: user(CUSTOMER),
            crossing: crossing(),
            assignee: None,
        })
        .then([opened()]);
    given::<Ticket>([])
        .when(TicketCommand::Open {
            customer: user(CUSTOMER),
            crossing: crossing(),
            assignee: Some(user(AGENT)),
        })
        .then([opened(), assigned(AGENT, None)]);
    given::<Ticket>([opened()])
        .when(TicketCommand::Open {
            customer: user(CUSTOMER),
            crossing: crossing(),
            assignee: None,
        })
        .then_rejected(TicketRejection::AlreadyOpened);
}

#[test]
fn the_same_cause_always_names_the_same_ticket() {
    let cause = Uuid::from_u128(71);
    assert_eq!(TicketId::for_cause(cause), TicketId::for_cause(cause));
    assert_ne!(
        TicketId::for_cause(cause),
        TicketId::for_cause(Uuid::from_u128(72))
    );
}

#[test]
fn nothing_happens_to_a_ticket_never_opened() {
    given::<Ticket>([])
        .when(TicketCommand::Assign {
            assignee: user(AGENT),
            by: Actor::System,
        })
        .then_rejected(TicketRejection::NotOpened);
}

#[test]
fn reassigning_is_recorded_with_who_had_it() {
    given::<Ticket>([opened()])
        .when(TicketCommand::Assign {
            assignee: user(AGENT),
            by: Actor::System,
        })
        .then([assigned(AGENT, None)]);
    given::<Ticket>([opened(), assigned(AGENT, None)])
        .when(TicketCommand::Assign {
            assignee: user(OTHER_AGENT),
            by: Actor::Admin(user(ADMIN)),
        })
        .then([TicketEvent::TicketAssigned {
            assignee: user(OTHER_AGENT),
            previous: Some(user(AGENT)),
            by: Actor::Admin(user(ADMIN)),
        }]);
    given::<Ticket>([opened(), assigned(AGENT, None)])
        .when(TicketCommand::Assign {
            assignee: user(AGENT),
            by: Actor::System,
        })
        .then_rejected(TicketRejection::AlreadyAssigned);
}

#[test]
fn customers_do_not_assign_and_resolved_tickets_are_not_assigned() {
    given::<Ticket>([opened()])
        .when(TicketCommand::Assign {
            assignee: user(AGENT),
            by: Actor::Customer(user(CUSTOMER)),
        })
        .then_rejected(TicketRejection::NotAllowed);
    given::<Ticket>([opened(), assigned(AGENT, None), resolved()])
        .when(TicketCommand::Assign {
            assignee: user(OTHER_AGENT),
            by: Actor::System,
        })
        .then_rejected(TicketRejection::Resolved);
}

#[test]
fn staff_and_the_ticket_s_own_customer_comment_and_nobody_else() {
    for author in [
        Actor::Agent(user(AGENT)),
        Actor::Admin(user(ADMIN)),
        Actor::Customer(user(CUSTOMER)),
    ] {
        given::<Ticket>([opened()])
            .when(TicketCommand::Comment {
                author,
                text: text("Is this right?"),
            })
            .then([TicketEvent::TicketCommented {
                author,
                text: text("Is this right?"),
            }]);
    }
    given::<Ticket>([opened()])
        .when(TicketCommand::Comment {
            author: Actor::Customer(user(99)),
            text: text("Not mine"),
        })
        .then_rejected(TicketRejection::NotAllowed);
}

#[test]
fn a_ticket_resolves_once_and_reopens_only_when_resolved() {
    given::<Ticket>([opened(), assigned(AGENT, None)])
        .when(TicketCommand::Resolve {
            by: Actor::Agent(user(AGENT)),
            resolution: text("Talked it through; limit raised."),
        })
        .then([resolved()]);
    given::<Ticket>([opened(), resolved()])
        .when(TicketCommand::Resolve {
            by: Actor::Agent(user(AGENT)),
            resolution: text("again"),
        })
        .then_rejected(TicketRejection::Resolved);
    given::<Ticket>([opened()])
        .when(TicketCommand::Reopen {
            by: Actor::Customer(user(CUSTOMER)),
            reason: text("still wrong"),
        })
        .then_rejected(TicketRejection::NotResolved);
    let reopened = TicketEvent::TicketReopened {
        by: Actor::Customer(user(CUSTOMER)),
        reason: text("Still overspending"),
    };
    given::<Ticket>([opened(), resolved()])
        .when(TicketCommand::Reopen {
            by: Actor::Customer(user(CUSTOMER)),
            reason: text("Still overspending"),
        })
        .then([reopened.clone()]);
    let state = Ticket::replay(&[opened(), assigned(AGENT, None), resolved(), reopened]);
    match state {
        Ticket::Open(ticket) => {
            assert_eq!(ticket.status(), Status::Assigned);
            assert_eq!(ticket.assignee, Some(user(AGENT)));
        }
        Ticket::Unopened => panic!("the ticket is open"),
    }
}

#[test]
fn ticket_texts_are_trimmed_bounded_and_may_span_lines() {
    assert_eq!(text("  ok \n").as_str(), "ok");
    assert!(TicketText::parse("line one\nline two").is_ok());
    assert_eq!(TicketText::parse("   "), Err(InvalidValue::Empty));
    assert_eq!(
        TicketText::parse(&"x".repeat(2_001)),
        Err(InvalidValue::TooLong { max: 2_000 })
    );
    assert!(TicketText::parse("bell\u{7}").is_err());
}

#[test]
fn events_keep_their_stored_names() {
    let stored = serde_json::to_value(opened()).expect("serialises");
    assert_eq!(stored["type"], "TicketOpened");
    assert_eq!(opened().event_type(), "TicketOpened");
    let back: TicketEvent = serde_json::from_value(stored).expect("deserialises");
    assert_eq!(back, opened());
}

/// One step of a random ticket history.
#[derive(Debug, Clone)]
enum Step {
    Open(Option<u128>),
    Assign(u128, u128),
    Comment(u128),
    Resolve(u128),
    Reopen(u128),
}

/// Who acts: the customer, another customer, two agents, an admin, or the system (0).
fn actor(n: u128) -> Actor {
    match n {
        0 => Actor::System,
        CUSTOMER => Actor::Customer(user(CUSTOMER)),
        AGENT | OTHER_AGENT => Actor::Agent(user(n)),
        ADMIN => Actor::Admin(user(ADMIN)),
        other => Actor::Customer(user(other)),
    }
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let who = 0_u128..=5;
    prop_oneof![
        prop::option::of(AGENT..=OTHER_AGENT).prop_map(Step::Open),
        (AGENT..=ADMIN, who.clone()).prop_map(|(to, by)| Step::Assign(to, by)),
        who.clone().prop_map(Step::Comment),
        who.clone().prop_map(Step::Resolve),
        who.prop_map(Step::Reopen),
    ]
}

fn command(step: &Step) -> TicketCommand {
    match step {
        Step::Open(assignee) => TicketCommand::Open {
            customer: user(CUSTOMER),
            crossing: crossing(),
            assignee: assignee.map(user),
        },
        Step::Assign(to, by) => TicketCommand::Assign {
            assignee: user(*to),
            by: actor(*by),
        },
        Step::Comment(by) => TicketCommand::Comment {
            author: actor(*by),
            text: text("A note."),
        },
        Step::Resolve(by) => TicketCommand::Resolve {
            by: actor(*by),
            resolution: text("Done."),
        },
        Step::Reopen(by) => TicketCommand::Reopen {
            by: actor(*by),
            reason: text("Again."),
        },
    }
}

/// The other customer's number in [`actor`]: not this ticket's customer.
const OTHER_CUSTOMER: u128 = 5;

/// What the rules say `step` does from `before`, written out apart from `decide`: who may
/// make which move, from where.
fn expected(before: &Ticket, step: &Step) -> Result<(), TicketRejection> {
    use TicketRejection::{
        AlreadyAssigned, AlreadyOpened, NotAllowed, NotOpened, NotResolved, Resolved,
    };
    let open = match (before, step) {
        (Ticket::Unopened, Step::Open(_)) => return Ok(()),
        (Ticket::Unopened, _) => return Err(NotOpened),
        (Ticket::Open(_), Step::Open(_)) => return Err(AlreadyOpened),
        (Ticket::Open(open), _) => open,
    };
    // Staff and the system may act on any ticket; of the customers, only its own.
    let may_act = |by: u128| by != OTHER_CUSTOMER;
    match *step {
        Step::Assign(_, by) if by == CUSTOMER || by == OTHER_CUSTOMER => Err(NotAllowed),
        Step::Assign(..) if open.resolved => Err(Resolved),
        Step::Assign(to, _) if open.assignee == Some(user(to)) => Err(AlreadyAssigned),
        Step::Assign(..) => Ok(()),
        Step::Comment(by) | Step::Resolve(by) | Step::Reopen(by) if !may_act(by) => Err(NotAllowed),
        Step::Comment(_) => Ok(()),
        Step::Resolve(_) if open.resolved => Err(Resolved),
        Step::Reopen(_) if !open.resolved => Err(NotResolved),
        Step::Resolve(_) | Step::Reopen(_) => Ok(()),
        Step::Open(_) => unreachable!("handled above"),
    }
}

proptest::proptest! {
    #[test]
    fn any_history_follows_the_state_machine(steps in proptest::collection::vec(step(), 1..60)) {
        let mut ticket = Ticket::default();
        let mut history: Vec<TicketEvent> = Vec::new();
        for step in &steps {
            let before = ticket.clone();
            let decided = ticket.decide(&command(step));
            // Accepted exactly when the rules allow it, and refused for the rules' reason.
            proptest::prop_assert_eq!(
                decided.as_ref().map(|_| ()).map_err(Clone::clone),
                expected(&before, step),
                "{:?} from {:?}", step, before
            );
            let Ok(events) = decided else {
                continue;
            };
            ticket = events.iter().fold(ticket, Ticket::evolve);
            // Moves allowed from where it stood, and only by whom may make them.
            match (&before, step) {
                (Ticket::Unopened, Step::Open(_)) => {}
                (Ticket::Unopened, _) => proptest::prop_assert!(false, "{step:?} on an unopened ticket"),
                (Ticket::Open(_), Step::Open(_)) => proptest::prop_assert!(false, "opened twice"),
                (Ticket::Open(open), step) => {
                    let by = match step {
                        Step::Assign(_, by) | Step::Comment(by) | Step::Resolve(by) | Step::Reopen(by) => *by,
                        Step::Open(_) => unreachable!("handled above"),
                    };
                    let is_other_customer = by == OTHER_CUSTOMER;
                    proptest::prop_assert!(!is_other_customer, "another customer acted: {step:?}");
                    match step {
                        Step::Assign(..) => {
                            proptest::prop_assert!(!open.resolved, "assigned while resolved");
                            proptest::prop_assert!(by != CUSTOMER, "a customer assigned");
                        }
                        // Comments stay possible on a resolved ticket: a customer may follow up.
                        Step::Comment(_) => {}
                        Step::Resolve(_) => proptest::prop_assert!(!open.resolved, "resolved twice"),
                        Step::Reopen(_) => proptest::prop_assert!(open.resolved, "reopened while open"),
                        Step::Open(_) => {}
                    }
                }
            }
            history.extend(events);
        }
        // The state is what the history says, replayed from nothing.
        proptest::prop_assert_eq!(Ticket::replay(&history), ticket.clone());
        if let Ticket::Open(open) = &ticket {
            // Resolved exactly when the last resolve/reopen event was a resolve.
            let last = history.iter().rev().find_map(|event| match event {
                TicketEvent::TicketResolved { .. } => Some(true),
                TicketEvent::TicketReopened { .. } => Some(false),
                _ => None,
            });
            proptest::prop_assert_eq!(open.resolved, last.unwrap_or(false));
            proptest::prop_assert_eq!(open.customer, user(CUSTOMER));
            proptest::prop_assert_eq!(
                matches!(history.first(), Some(TicketEvent::TicketOpened { .. })),
                true
            );
        }
    }
}

mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::fuzz::{
        any_json, check_json_goes_through_parse, check_reads_back, check_text_rules, config, fail,
        text_around,
    };

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn ticket_text_is_trimmed_text_of_1_to_2000_characters_with_only_line_breaks_and_tabs(
            raw in text_around(2_000),
        ) {
            let parsed = TicketText::parse(&raw);

            check_text_rules(&raw, (1, 2_000), &['\n', '\r', '\t'], parsed.as_ref().map(TicketText::as_str))?;
            if let Ok(text) = &parsed {
                check_reads_back(text, TicketText::parse)?;
            }
        }

        #[test]
        fn json_becomes_ticket_text_only_through_its_parse(
            json in any_json(&["text"]),
            text in text_around(12),
        ) {
            for json in [json, Value::String(text)] {
                check_json_goes_through_parse(&json, TicketText::parse)?;
            }
        }

        /// An actor is stored in every ticket event: what is read writes back as it was
        /// read, and only staff and customers carry a user.
        #[test]
        fn json_becomes_an_actor_only_in_its_stored_shape(
            json in prop_oneof![
                (
                    prop::sample::select(vec!["system", "agent", "admin", "customer", "System", "user"]),
                    prop_oneof![
                        any::<u128>().prop_map(|n| json!(Uuid::from_u128(n))),
                        any_json(&["kind", "user_id"]),
                    ],
                ).prop_map(|(kind, user_id)| json!({"kind": kind, "user_id": user_id})),
                prop::sample::select(vec!["system", "agent", "admin", "customer"])
                    .prop_map(|kind| json!({"kind": kind})),
                any_json(&["kind", "user_id"]),
            ],
        ) {
            if let Ok(actor) = serde_json::from_value::<Actor>(json.clone()) {
                let written = serde_json::to_value(actor).map_err(fail)?;
                prop_assert_eq!(serde_json::from_value::<Actor>(written.clone()).map_err(fail)?, actor);
                prop_assert_eq!(written.get("kind"), json.get("kind"));
                if !matches!(actor, Actor::System) {
                    prop_assert_eq!(written.get("user_id"), json.get("user_id"));
                }
            }
        }
    }
}

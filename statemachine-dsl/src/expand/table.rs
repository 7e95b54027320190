//! The `Machine` type: the static transition table, hooks, calendars and graphs.

use chrono::{Datelike, Timelike};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;
use sha2::{Digest, Sha256};

use super::names::{Names, doc, variant};
use crate::SourceFile;
use crate::model::{Action, Calendar, Guard, HookKind, Model, Transition};

/// One row of the table: a declaration seen from one of its source states.
struct Row<'a> {
    from: &'a str,
    transition: &'a Transition,
}

pub(crate) fn expand(model: &Model, names: &Names, file: &SourceFile<'_>) -> TokenStream {
    let rows = rows(model, names);
    let specs = rows.iter().map(|row| spec(model, row, file));
    let count = proc_macro2::Literal::usize_unsuffixed(rows.len());
    let candidates = candidates(&rows, names);
    let available = available_events(model, names);
    let hooks = hooks_fn(model, HookKind::Enter, names);
    let exits = hooks_fn(model, HookKind::Exit, names);
    let calendars = model.calendars.iter().map(calendar);
    let name = &model.name;
    let hash = source_hash(file.text());
    let initial = variant(&model.initial().name);
    let doc = doc(&machine_doc(model, file));
    quote! {
        #[doc = #doc]
        #[derive(
            ::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug,
            ::core::default::Default, ::core::cmp::PartialEq, ::core::cmp::Eq,
            ::core::hash::Hash,
        )]
        pub struct Machine;

        #[doc(hidden)]
        static __TRANSITIONS: [::statemachine::TransitionSpec<Machine>; #count] = [#(#specs),*];

        impl ::statemachine::Machine for Machine {
            type State = State;
            type Event = Event;
            type ActorKind = ActorKind;
            type Reason = Reason;
            type Guard = Guard;
            type Action = Action;
            type Notification = Notification;
            type Operation = Operation;

            const NAME: &'static str = #name;
            const SOURCE_HASH: &'static str = #hash;
            const INITIAL: State = State::#initial;
            const TRANSITIONS: &'static [::statemachine::TransitionSpec<Machine>] = &__TRANSITIONS;
            const CALENDARS: &'static [::statemachine::Calendar] = &[#(#calendars),*];

            fn candidates(state: State, event: Event) -> &'static [::statemachine::TransitionSpec<Machine>] {
                #candidates
            }

            fn available_events(state: State, actor: ActorKind) -> &'static [Event] {
                #available
            }

            fn on_enter(state: State) -> &'static ::statemachine::HookSpec<Machine> {
                #hooks
            }

            fn on_exit(state: State) -> &'static ::statemachine::HookSpec<Machine> {
                #exits
            }

            fn actor_class(actor: ActorKind) -> ::statemachine::ActorClass {
                actor.class()
            }
        }
    }
}

/// The machine of a file with errors: the same items, allowing nothing.
pub(crate) fn expand_empty(names: &Names) -> TokenStream {
    let initial = match names.states.first() {
        Some(first) => {
            let v = variant(first);
            quote!(State::#v)
        }
        None => quote!(::core::panic!("the machine's file has errors")),
    };
    quote! {
        /// The machine; it allows nothing while its file has errors.
        #[derive(
            ::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug,
            ::core::default::Default, ::core::cmp::PartialEq, ::core::cmp::Eq,
            ::core::hash::Hash,
        )]
        pub struct Machine;

        impl ::statemachine::Machine for Machine {
            type State = State;
            type Event = Event;
            type ActorKind = ActorKind;
            type Reason = Reason;
            type Guard = Guard;
            type Action = Action;
            type Notification = Notification;
            type Operation = Operation;

            const NAME: &'static str = "";
            const SOURCE_HASH: &'static str = "";
            const INITIAL: State = #initial;
            const TRANSITIONS: &'static [::statemachine::TransitionSpec<Machine>] = &[];
            const CALENDARS: &'static [::statemachine::Calendar] = &[];

            fn candidates(_: State, _: Event) -> &'static [::statemachine::TransitionSpec<Machine>] {
                &[]
            }

            fn available_events(_: State, _: ActorKind) -> &'static [Event] {
                &[]
            }

            fn on_enter(_: State) -> &'static ::statemachine::HookSpec<Machine> {
                &::statemachine::HookSpec::EMPTY
            }

            fn on_exit(_: State) -> &'static ::statemachine::HookSpec<Machine> {
                &::statemachine::HookSpec::EMPTY
            }

            fn actor_class(actor: ActorKind) -> ::statemachine::ActorClass {
                actor.class()
            }
        }
    }
}

/// `DOT` and `MERMAID`: the graphs `fsm graph` prints.
pub(crate) fn graphs(model: &Model) -> TokenStream {
    let dot = crate::to_dot(model);
    let mermaid = crate::to_mermaid(model);
    quote! {
        /// The machine's graph in Graphviz DOT, as `fsm graph --format dot` prints it.
        pub const DOT: &str = #dot;
        /// The machine's graph as a Mermaid `stateDiagram-v2`, as
        /// `fsm graph --format mermaid` prints it.
        pub const MERMAID: &str = #mermaid;
    }
}

/// Every declaration once per source state, grouped by (state, event) in the order of
/// `State::ALL` and `Event::ALL`, file order kept within a group.
fn rows<'a>(model: &'a Model, names: &Names) -> Vec<Row<'a>> {
    let position = |list: &[String], name: &str| list.iter().position(|n| n == name);
    let mut rows: Vec<Row<'a>> = model
        .transitions
        .iter()
        .flat_map(|t| {
            t.from.iter().map(move |from| Row {
                from,
                transition: t,
            })
        })
        .collect();
    rows.sort_by_key(|row| {
        (
            position(&names.states, row.from),
            position(&names.events, &row.transition.event),
        )
    });
    rows
}

fn spec(model: &Model, row: &Row<'_>, file: &SourceFile<'_>) -> TokenStream {
    let t = row.transition;
    let from = variant(row.from);
    let event = variant(&t.event);
    let to = variant(&t.to);
    let actors = t.actors.iter().map(|rule| {
        let actor = variant(&rule.actor);
        let needs_reason = rule.needs_reason;
        quote!(::statemachine::ActorRule { actor: ActorKind::#actor, needs_reason: #needs_reason })
    });
    let guard = match &t.guard {
        Some(g) => {
            let g = guard(g);
            quote!(::core::option::Option::Some(&#g))
        }
        None => quote!(::core::option::Option::None),
    };
    let actions = t.actions.iter().map(action);
    let emits = t.emits.iter().map(|n| variant(n));
    let window = match t
        .window
        .as_ref()
        .and_then(|w| model.calendars.iter().position(|c| &c.name == w))
    {
        Some(index) => quote!(::core::option::Option::Some(#index)),
        None => quote!(::core::option::Option::None),
    };
    let is_override = t.is_override();
    let line = u32::try_from(file.line_col(t.span.start).0).unwrap_or(u32::MAX);
    let line = proc_macro2::Literal::u32_unsuffixed(line);
    quote! {
        ::statemachine::TransitionSpec {
            from: State::#from,
            event: Event::#event,
            to: State::#to,
            actors: &[#(#actors),*],
            guard: #guard,
            actions: &[#(#actions),*],
            emits: &[#(Notification::#emits),*],
            window: #window,
            is_override: #is_override,
            line: #line,
        }
    }
}

fn guard(g: &Guard) -> TokenStream {
    match g {
        Guard::Name(n) => {
            let v = variant(n);
            quote!(::statemachine::GuardExpr::Guard(Guard::#v))
        }
        Guard::Not(inner) => {
            let inner = guard(inner);
            quote!(::statemachine::GuardExpr::Not(&#inner))
        }
        Guard::And(operands) => {
            let operands = operands.iter().map(guard);
            quote!(::statemachine::GuardExpr::All(&[#(#operands),*]))
        }
        Guard::Or(operands) => {
            let operands = operands.iter().map(guard);
            quote!(::statemachine::GuardExpr::Any(&[#(#operands),*]))
        }
    }
}

fn action(a: &Action) -> TokenStream {
    let name = variant(&a.name);
    let undo = match &a.undo {
        Some(u) => {
            let u = variant(u);
            quote!(::core::option::Option::Some(Action::#u))
        }
        None => quote!(::core::option::Option::None),
    };
    quote!(::statemachine::ActionSpec { action: Action::#name, undo: #undo })
}

/// A `match` from (state, event) to the row range of that group.
fn candidates(rows: &[Row<'_>], names: &Names) -> TokenStream {
    let mut arms = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let key = (rows[start].from, rows[start].transition.event.as_str());
        let end = start
            + rows[start..]
                .iter()
                .take_while(|r| (r.from, r.transition.event.as_str()) == key)
                .count();
        let (state, event) = (variant(key.0), variant(key.1));
        let (from, to) = (
            Literal::usize_unsuffixed(start),
            Literal::usize_unsuffixed(end),
        );
        arms.push(quote!((State::#state, Event::#event) => &__TRANSITIONS[#from..#to],));
        start = end;
    }
    let wildcard = catch_all(
        arms.len(),
        names.states.len() * names.events.len(),
        quote!(&[]),
    );
    quote! {
        match (state, event) {
            #(#arms)*
            #wildcard
        }
    }
}

/// A `match` from (state, actor) to the events the actor is listed for.
fn available_events(model: &Model, names: &Names) -> TokenStream {
    let mut arms = Vec::new();
    for state in &names.states {
        for (actor, _) in &names.actors {
            let events: Vec<Ident> = names
                .events
                .iter()
                .filter(|event| {
                    model.transitions.iter().any(|t| {
                        &t.event == *event
                            && t.from.contains(state)
                            && t.actors.iter().any(|r| &r.actor == actor)
                    })
                })
                .map(|e| variant(e))
                .collect();
            if !events.is_empty() {
                let (s, a) = (variant(state), variant(actor));
                arms.push(quote!((State::#s, ActorKind::#a) => &[#(Event::#events),*],));
            }
        }
    }
    let wildcard = catch_all(
        arms.len(),
        names.states.len() * names.actors.len(),
        quote!(&[]),
    );
    quote! {
        match (state, actor) {
            #(#arms)*
            #wildcard
        }
    }
}

/// `_ => default`, unless the arms already cover every pair (an unreachable pattern
/// would warn in the user's crate).
fn catch_all(arms: usize, pairs: usize, default: TokenStream) -> TokenStream {
    if arms < pairs {
        quote!(_ => #default,)
    } else {
        TokenStream::new()
    }
}

/// A `match` from state to its merged `enter` or `exit` hooks.
fn hooks_fn(model: &Model, kind: HookKind, names: &Names) -> TokenStream {
    let mut arms = Vec::new();
    for state in &names.states {
        let of_state: Vec<_> = model
            .hooks
            .iter()
            .filter(|h| h.kind == kind && &h.state == state)
            .collect();
        if of_state.is_empty() {
            continue;
        }
        let actions = of_state.iter().flat_map(|h| &h.actions).map(action);
        let emits = of_state.iter().flat_map(|h| &h.emits).map(|n| variant(n));
        let s = variant(state);
        arms.push(quote! {
            State::#s => &::statemachine::HookSpec {
                actions: &[#(#actions),*],
                emits: &[#(Notification::#emits),*],
            },
        });
    }
    let wildcard = catch_all(
        arms.len(),
        names.states.len(),
        quote!(&::statemachine::HookSpec::EMPTY),
    );
    quote! {
        match state {
            #(#arms)*
            #wildcard
        }
    }
}

fn calendar(c: &Calendar) -> TokenStream {
    let name = &c.name;
    let zone = Ident::new(&tz_variant(c.timezone.name()), Span::call_site());
    let hours = c.hours.iter().map(|h| {
        let day = Ident::new(&format!("{:?}", h.day), Span::call_site());
        let open = time(h.open);
        let close = match h.close {
            Some(t) => {
                let t = time(t);
                quote!(::core::option::Option::Some(#t))
            }
            None => quote!(::core::option::Option::None),
        };
        quote! {
            ::statemachine::OpeningHours {
                day: ::statemachine::chrono::Weekday::#day,
                open: #open,
                close: #close,
            }
        }
    });
    let closed = c.closed.iter().map(|d| {
        let year = Literal::i32_unsuffixed(d.year());
        let (month, day) = (
            Literal::u32_unsuffixed(d.month()),
            Literal::u32_unsuffixed(d.day()),
        );
        quote!(::statemachine::__private::date(#year, #month, #day))
    });
    quote! {
        ::statemachine::Calendar {
            name: #name,
            timezone: ::statemachine::chrono_tz::Tz::#zone,
            hours: &[#(#hours),*],
            closed: &[#(#closed),*],
        }
    }
}

fn time(t: chrono::NaiveTime) -> TokenStream {
    let (hour, minute) = (
        Literal::u32_unsuffixed(t.hour()),
        Literal::u32_unsuffixed(t.minute()),
    );
    quote!(::statemachine::__private::time(#hour, #minute))
}

/// chrono-tz's variant for a zone: `Europe/Berlin` is `Europe__Berlin`, `Etc/GMT+5` is
/// `Etc__GMTPlus5`, `America/Port-au-Prince` is `America__PortauPrince`.
fn tz_variant(name: &str) -> String {
    let name = name.replace('/', "__").replace('+', "Plus");
    match name.find('-') {
        Some(pos) if name[pos + 1..].starts_with(|c: char| c.is_ascii_digit()) => {
            name.replace('-', "Minus")
        }
        Some(_) => name.replace('-', ""),
        None => name,
    }
}

/// The SHA-256 of the source text, in lowercase hex.
fn source_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn machine_doc(model: &Model, file: &SourceFile<'_>) -> String {
    format!(
        "The `{}` machine, compiled from `{}`.\n\n\
         It implements [`statemachine::Machine`]: the transition table, hooks and \
         calendars of the file as static data.\n\n\
         ```mermaid\n{}```",
        model.name,
        file.name(),
        crate::to_mermaid(model)
    )
}

#[cfg(test)]
mod tests {
    use super::tz_variant;

    #[test]
    fn time_zones_take_chrono_tz_variant_names() {
        assert_eq!(tz_variant("Europe/Berlin"), "Europe__Berlin");
        assert_eq!(tz_variant("Etc/GMT+5"), "Etc__GMTPlus5");
        assert_eq!(tz_variant("Etc/GMT-14"), "Etc__GMTMinus14");
        assert_eq!(
            tz_variant("America/Port-au-Prince"),
            "America__PortauPrince"
        );
        assert_eq!(
            tz_variant("America/Argentina/Buenos_Aires"),
            "America__Argentina__Buenos_Aires"
        );
    }
}

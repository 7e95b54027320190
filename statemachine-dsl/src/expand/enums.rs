//! One enum per kind of name: `State`, `Event`, `ActorKind`, `Reason`, `Guard`,
//! `Action`, `Notification`, `Operation`, with their text form and `ALL`.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use super::names::{Names, doc, variant};
use crate::SourceFile;
use crate::model::{ActorKind, Model, Transition};

/// The eight enums and the state's and actor's own methods.
pub(crate) fn expand(names: &Names, model: Option<&Model>, file: &SourceFile<'_>) -> TokenStream {
    let docs = |f: &dyn Fn(&Model, &str) -> String, list: &[String]| -> Vec<String> {
        list.iter()
            .map(|n| model.map_or_else(|| format!("`{n}`"), |m| f(m, n)))
            .collect()
    };
    let actor_names: Vec<String> = names.actors.iter().map(|(n, _)| n.clone()).collect();
    let machine = model.map_or_else(
        || "the machine".to_owned(),
        |m| format!("the `{}` machine", m.name),
    );
    let kinds = [
        (
            "state",
            "State",
            &names.states,
            docs(&|m, n| state_doc(m, n, file), &names.states),
        ),
        (
            "event",
            "Event",
            &names.events,
            docs(&|m, n| event_doc(m, n, file), &names.events),
        ),
        (
            "actor",
            "ActorKind",
            &actor_names,
            docs(&actor_doc, &actor_names),
        ),
        (
            "reason",
            "Reason",
            &names.reasons,
            docs(&|_, n| format!("`{n}`"), &names.reasons),
        ),
        (
            "guard",
            "Guard",
            &names.guards,
            docs(&|m, n| guard_doc(m, n, file), &names.guards),
        ),
        (
            "action",
            "Action",
            &names.actions,
            docs(&|m, n| action_doc(m, n, file), &names.actions),
        ),
        (
            "notification",
            "Notification",
            &names.notifications,
            docs(&|_, n| format!("`{n}`"), &names.notifications),
        ),
        (
            "operation",
            "Operation",
            &names.operations,
            docs(&operation_doc, &names.operations),
        ),
    ];
    let enums = kinds.iter().map(|(kind, ty, list, variant_docs)| {
        let text = doc(&format!(
            "The {kind}s of {machine}, spelled as in the `.fsm` file."
        ));
        let variant_docs: Vec<String> = variant_docs.iter().map(|d| doc(d)).collect();
        name_enum(
            kind,
            &Ident::new(ty, Span::call_site()),
            list,
            &variant_docs,
            &text,
        )
    });
    let state = state_methods(names, model);
    let actor = actor_methods(names);
    quote! {
        #(#enums)*
        #state
        #actor
    }
}

fn name_enum(kind: &str, ty: &Ident, names: &[String], docs: &[String], doc: &str) -> TokenStream {
    let variants: Vec<Ident> = names.iter().map(|n| variant(n)).collect();
    let count = proc_macro2::Literal::usize_unsuffixed(names.len());
    quote! {
        #[doc = #doc]
        #[derive(
            ::core::clone::Clone, ::core::marker::Copy, ::core::cmp::PartialEq,
            ::core::cmp::Eq, ::core::hash::Hash, ::core::cmp::PartialOrd, ::core::cmp::Ord,
            ::core::fmt::Debug,
            ::statemachine::__private::serde::Serialize,
            ::statemachine::__private::serde::Deserialize,
        )]
        #[serde(crate = "::statemachine::__private::serde")]
        pub enum #ty {
            #(
                #[doc = #docs]
                #[serde(rename = #names)]
                #variants,
            )*
        }

        impl #ty {
            /// Every variant, in the order of the `.fsm` file.
            pub const ALL: [#ty; #count] = [#(#ty::#variants),*];

            /// The `.fsm` spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    #(#ty::#variants => #names,)*
                }
            }
        }

        impl ::statemachine::Name for #ty {
            const KIND: &'static str = #kind;
            const ALL: &'static [#ty] = &#ty::ALL;

            fn as_str(self) -> &'static str {
                #ty::as_str(self)
            }
        }

        impl ::core::fmt::Display for #ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(#ty::as_str(*self))
            }
        }

        impl ::core::str::FromStr for #ty {
            type Err = ::statemachine::UnknownName;

            fn from_str(text: &str) -> ::core::result::Result<#ty, ::statemachine::UnknownName> {
                match text {
                    #(#names => ::core::result::Result::Ok(#ty::#variants),)*
                    _ => ::core::result::Result::Err(::statemachine::UnknownName::new(
                        #kind,
                        text,
                        [#(#names),*],
                    )),
                }
            }
        }
    }
}

fn state_methods(names: &Names, model: Option<&Model>) -> TokenStream {
    let states = |pick: &dyn Fn(&crate::model::State) -> bool| -> Vec<Ident> {
        model.map_or_else(Vec::new, |m| {
            m.states
                .iter()
                .filter(|s| pick(s))
                .map(|s| variant(&s.name))
                .collect()
        })
    };
    let initial = is_one_of(&states(&|s| s.initial));
    let terminal = is_one_of(&states(&|s| s.terminal));
    let operations = names.operations.iter().map(|op| {
        let allowed: Vec<Ident> = model.map_or_else(Vec::new, |m| {
            let in_states = m
                .operations
                .iter()
                .filter(|o| &o.name == op)
                .flat_map(|o| &o.states);
            in_states.map(|s| variant(s)).collect()
        });
        let op = variant(op);
        let test = is_one_of(&allowed);
        quote! { Operation::#op => #test, }
    });
    quote! {
        impl State {
            /// Whether this is the `initial` state.
            pub const fn is_initial(self) -> bool {
                #initial
            }

            /// Whether this state is `terminal`: only an `override` leaves it.
            pub const fn is_terminal(self) -> bool {
                #terminal
            }

            /// Whether an `allow operation in ...` rule permits `operation` in this state.
            pub const fn allows(self, operation: Operation) -> bool {
                match operation {
                    #(#operations)*
                }
            }
        }
    }
}

/// `matches!(self, State::A | State::B)`, or `false` for no states.
fn is_one_of(states: &[Ident]) -> TokenStream {
    if states.is_empty() {
        quote!(false)
    } else {
        quote!(::core::matches!(self, #(State::#states)|*))
    }
}

fn actor_methods(names: &Names) -> TokenStream {
    let arms = names.actors.iter().map(|(name, kind)| {
        let v = variant(name);
        let class = match kind {
            ActorKind::Owner => quote!(Owner),
            ActorKind::Staff => quote!(Staff),
            ActorKind::Service => quote!(Service),
        };
        quote! { ActorKind::#v => ::statemachine::ActorClass::#class, }
    });
    quote! {
        impl ActorKind {
            /// Whether this actor is checked against the owner, must hold a staff role,
            /// or is a trusted service.
            pub const fn class(self) -> ::statemachine::ActorClass {
                match self {
                    #(#arms)*
                }
            }
        }
    }
}

fn line(file: &SourceFile<'_>, t: &Transition) -> usize {
    file.line_col(t.span.start).0
}

fn declaration(file: &SourceFile<'_>, t: &Transition) -> String {
    let keyword = if t.is_override() { "override" } else { "on" };
    format!(
        "`{keyword} {}: {} -> {}` ({}:{})",
        t.event,
        t.from.join(", "),
        t.to,
        file.name(),
        line(file, t)
    )
}

fn state_doc(model: &Model, name: &str, file: &SourceFile<'_>) -> String {
    let Some(state) = model.state(name) else {
        return format!("`{name}`");
    };
    let role = match (state.initial, state.terminal) {
        (true, true) => ", the initial state, terminal",
        (true, false) => ", the initial state",
        (false, true) => ", terminal: only an `override` leaves it",
        (false, false) => "",
    };
    let (line, _) = file.line_col(state.span.start);
    format!("`{name}`{role} ({}:{line})", file.name())
}

fn event_doc(model: &Model, name: &str, file: &SourceFile<'_>) -> String {
    let declarations: Vec<String> = model
        .transitions
        .iter()
        .filter(|t| t.event == name)
        .map(|t| format!("- {}", declaration(file, t)))
        .collect();
    format!("`{name}`, declared by:\n\n{}", declarations.join("\n"))
}

fn actor_doc(model: &Model, name: &str) -> String {
    match model.actor(name).map(|a| a.kind) {
        Some(ActorKind::Owner) => format!("`{name}`: an owner, checked against the entity's owner"),
        Some(ActorKind::Staff) => format!("`{name}`: staff, who must hold this role"),
        _ => format!("`{name}`: a trusted service"),
    }
}

fn guard_doc(model: &Model, name: &str, file: &SourceFile<'_>) -> String {
    let uses: Vec<String> = model
        .transitions
        .iter()
        .filter(|t| t.guard.as_ref().is_some_and(|g| g.names().contains(&name)))
        .map(|t| {
            format!(
                "- {} `when {}`",
                declaration(file, t),
                t.guard
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )
        })
        .collect();
    format!("`{name}`, used by:\n\n{}", uses.join("\n"))
}

fn action_doc(model: &Model, name: &str, file: &SourceFile<'_>) -> String {
    let undoes: Vec<&str> = model
        .transitions
        .iter()
        .flat_map(|t| &t.actions)
        .filter(|a| a.undo.as_deref() == Some(name))
        .map(|a| a.name.as_str())
        .collect();
    let runs: Vec<String> = model
        .transitions
        .iter()
        .filter(|t| t.actions.iter().any(|a| a.name == name))
        .map(|t| format!("- {}", declaration(file, t)))
        .collect();
    let mut doc = format!("`{name}`");
    if let Some(first) = undoes.first() {
        doc.push_str(&format!(", the undo of `{first}`"));
    }
    if !runs.is_empty() {
        doc.push_str(&format!(", run by:\n\n{}", runs.join("\n")));
    }
    doc
}

fn operation_doc(model: &Model, name: &str) -> String {
    let states: Vec<&str> = model
        .operations
        .iter()
        .filter(|o| o.name == name)
        .flat_map(|o| o.states.iter().map(String::as_str))
        .collect();
    format!("`{name}`, allowed in {}", states.join(", "))
}

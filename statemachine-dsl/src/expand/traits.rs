//! The `Guards` and `Actions` traits an application implements, with their dispatch.

use proc_macro2::TokenStream;
use quote::quote;

use super::names::{Names, doc, method, variant};
use crate::model::Model;

pub(crate) fn expand(names: &Names, model: Option<&Model>) -> TokenStream {
    let machine = model.map_or_else(
        || "the machine".to_owned(),
        |m| format!("the `{}` machine", m.name),
    );
    let guards = guards(names, &machine);
    let actions = actions(names, &machine);
    quote! {
        #guards
        #actions
    }
}

fn guards(names: &Names, machine: &str) -> TokenStream {
    let methods: Vec<_> = names.guards.iter().map(|n| method(n)).collect();
    let variants: Vec<_> = names.guards.iter().map(|n| variant(n)).collect();
    let method_docs = names
        .guards
        .iter()
        .map(|n| doc(&format!("The guard `{n}`: whether it holds now.")));
    let doc = doc(&format!(
        "The guards of {machine}: one method per name used in a `when` clause.\n\n\
         The engine calls them inside the transition's database transaction, in the order \
         the expression names them, stopping as soon as the outcome is known."
    ));
    quote! {
        #[doc = #doc]
        pub trait Guards: ::core::marker::Sync {
            /// What every guard reads: the transition and the transaction it runs in.
            type Context: ::core::marker::Send + ?::core::marker::Sized;
            /// Why a guard could not answer.
            type Error;

            #(
                #[doc = #method_docs]
                fn #methods(
                    &self,
                    ctx: &mut Self::Context,
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<bool, Self::Error>,
                > + ::core::marker::Send;
            )*

            /// Calls the method of `guard`.
            fn check(
                &self,
                guard: Guard,
                ctx: &mut Self::Context,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, Self::Error>,
            > + ::core::marker::Send {
                async move {
                    match guard {
                        #(Guard::#variants => self.#methods(ctx).await,)*
                    }
                }
            }

            /// Evaluates a `when` expression: left to right, short-circuiting, and saying
            /// which guard settled the outcome.
            fn evaluate(
                &self,
                expr: &::statemachine::GuardExpr<Guard>,
                ctx: &mut Self::Context,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<::statemachine::Decision<Guard>, Self::Error>,
            > + ::core::marker::Send {
                async move {
                    let mut dispatch = __GuardDispatch { guards: self, ctx };
                    ::statemachine::evaluate(expr, &mut dispatch).await
                }
            }
        }

        /// Lets `statemachine::evaluate` call guards through `Guards::check`.
        struct __GuardDispatch<'a, G: Guards + ?::core::marker::Sized> {
            guards: &'a G,
            ctx: &'a mut G::Context,
        }

        impl<G: Guards + ?::core::marker::Sized> ::statemachine::GuardCheck<Guard> for __GuardDispatch<'_, G> {
            type Error = G::Error;

            fn check(
                &mut self,
                guard: Guard,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, G::Error>,
            > + ::core::marker::Send {
                self.guards.check(guard, self.ctx)
            }
        }
    }
}

fn actions(names: &Names, machine: &str) -> TokenStream {
    let methods: Vec<_> = names.actions.iter().map(|n| method(n)).collect();
    let variants: Vec<_> = names.actions.iter().map(|n| variant(n)).collect();
    let method_docs = names
        .actions
        .iter()
        .map(|n| doc(&format!("The action `{n}`.")));
    let doc = doc(&format!(
        "The actions of {machine}: one method per action and undo action of `do` clauses \
         and `enter`/`exit` hooks.\n\n\
         The engine runs a transition's actions in order, then the exit hook of the state \
         it leaves and the enter hook of the state it enters, all inside its transaction. \
         When a later step fails it runs the `undo` of each completed action that has \
         one, in reverse order."
    ));
    quote! {
        #[doc = #doc]
        pub trait Actions: ::core::marker::Sync {
            /// What every action works on: the transition and the transaction it runs in.
            type Context: ::core::marker::Send + ?::core::marker::Sized;
            /// Why an action failed; the transition is then rolled back.
            type Error;

            #(
                #[doc = #method_docs]
                fn #methods(
                    &self,
                    ctx: &mut Self::Context,
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<(), Self::Error>,
                > + ::core::marker::Send;
            )*

            /// Calls the method of `action`.
            fn run(
                &self,
                action: Action,
                ctx: &mut Self::Context,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), Self::Error>,
            > + ::core::marker::Send {
                async move {
                    match action {
                        #(Action::#variants => self.#methods(ctx).await,)*
                    }
                }
            }
        }
    }
}

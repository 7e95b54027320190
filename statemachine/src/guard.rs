//! Guard expressions (`when payment_authorized and not fraud_hold`) and their evaluation.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A `when` clause as static data, with the user's parentheses resolved into its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuardExpr<G: 'static> {
    Guard(G),
    Not(&'static GuardExpr<G>),
    /// `a and b and ...`: true when every operand is.
    All(&'static [GuardExpr<G>]),
    /// `a or b or ...`: true when any operand is.
    Any(&'static [GuardExpr<G>]),
}

impl<G: Copy> GuardExpr<G> {
    /// Every guard in the expression, left to right, repeats included.
    pub fn guards(&self) -> Vec<G> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<G>) {
        match self {
            GuardExpr::Guard(g) => out.push(*g),
            GuardExpr::Not(e) => e.collect(out),
            GuardExpr::All(es) | GuardExpr::Any(es) => es.iter().for_each(|e| e.collect(out)),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            GuardExpr::Any(_) => 0,
            GuardExpr::All(_) => 1,
            GuardExpr::Not(_) | GuardExpr::Guard(_) => 2,
        }
    }
}

/// Prints the expression in `.fsm` syntax with only the parentheses it needs.
impl<G: Copy + fmt::Display> fmt::Display for GuardExpr<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (operands, separator) = match self {
            GuardExpr::Guard(g) => return write!(f, "{g}"),
            GuardExpr::Not(e) => {
                f.write_str("not ")?;
                return write_operand(f, e, 2);
            }
            GuardExpr::All(es) => (es, " and "),
            GuardExpr::Any(es) => (es, " or "),
        };
        for (i, e) in operands.iter().enumerate() {
            if i > 0 {
                f.write_str(separator)?;
            }
            write_operand(f, e, self.precedence() + 1)?;
        }
        Ok(())
    }
}

fn write_operand<G: Copy + fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    e: &GuardExpr<G>,
    parent: u8,
) -> fmt::Result {
    if e.precedence() < parent {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

/// Calls one guard: the generated `Guards` trait's dispatch implements this.
pub trait GuardCheck<G> {
    type Error;

    fn check(&mut self, guard: G) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

/// The outcome of evaluating a guard expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decision<G> {
    /// Whether the whole expression holds.
    pub holds: bool,
    /// The guard whose value settled the outcome: for a refusal, the rule that refused
    /// (`fraud_hold` in `payment_authorized and not fraud_hold` when a hold is on).
    pub decided_by: G,
    /// What that guard returned.
    pub value: bool,
}

/// Evaluates `expr` left to right, calling each guard at most once per occurrence and
/// stopping as soon as the outcome is known (`a and b` never calls `b` when `a` is
/// false). A guard's error stops the evaluation and is returned as is.
pub async fn evaluate<G, C>(expr: &GuardExpr<G>, checker: &mut C) -> Result<Decision<G>, C::Error>
where
    G: Copy + Send + Sync + 'static,
    C: GuardCheck<G> + Send,
{
    eval(expr, checker).await
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// Recursion needs a boxed future; guard expressions are at most 32 levels deep.
fn eval<'a, G, C>(
    expr: &'a GuardExpr<G>,
    checker: &'a mut C,
) -> BoxFuture<'a, Result<Decision<G>, C::Error>>
where
    G: Copy + Send + Sync + 'static,
    C: GuardCheck<G> + Send,
{
    Box::pin(async move {
        match expr {
            GuardExpr::Guard(g) => {
                let value = checker.check(*g).await?;
                Ok(Decision {
                    holds: value,
                    decided_by: *g,
                    value,
                })
            }
            GuardExpr::Not(e) => {
                let inner = eval(e, checker).await?;
                Ok(Decision {
                    holds: !inner.holds,
                    ..inner
                })
            }
            GuardExpr::All(es) => settle(es, checker, false).await,
            GuardExpr::Any(es) => settle(es, checker, true).await,
        }
    })
}

/// `and` stops at the first false operand, `or` at the first true one; otherwise the
/// last operand decides.
async fn settle<G, C>(
    operands: &[GuardExpr<G>],
    checker: &mut C,
    stop_at: bool,
) -> Result<Decision<G>, C::Error>
where
    G: Copy + Send + Sync + 'static,
    C: GuardCheck<G> + Send,
{
    let mut last = None;
    for operand in operands {
        let decision = eval(operand, checker).await?;
        if decision.holds == stop_at {
            return Ok(decision);
        }
        last = Some(decision);
    }
    Ok(last.expect("generated guard expressions have at least one operand"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Guards with fixed answers that record the order they were called in.
    struct Fixed {
        answers: HashMap<&'static str, Result<bool, &'static str>>,
        calls: Vec<&'static str>,
    }

    impl GuardCheck<&'static str> for Fixed {
        type Error = &'static str;

        async fn check(&mut self, guard: &'static str) -> Result<bool, &'static str> {
            self.calls.push(guard);
            self.answers[guard]
        }
    }

    fn fixed(answers: &[(&'static str, Result<bool, &'static str>)]) -> Fixed {
        Fixed {
            answers: answers.iter().copied().collect(),
            calls: Vec::new(),
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        // The futures here never wait on anything, so one poll with a no-op waker ends them.
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("guard evaluation waited on nothing"),
        }
    }

    use GuardExpr::{All, Any, Guard, Not};

    static PAY: GuardExpr<&str> = All(&[Guard("authorized"), Not(&Guard("fraud_hold"))]);

    #[test]
    fn and_stops_at_the_first_false_operand() {
        let mut guards = fixed(&[("authorized", Ok(false)), ("fraud_hold", Ok(false))]);
        let decision = block_on(evaluate(&PAY, &mut guards));
        assert_eq!(
            decision,
            Ok(Decision {
                holds: false,
                decided_by: "authorized",
                value: false
            })
        );
        assert_eq!(guards.calls, ["authorized"]);
    }

    #[test]
    fn a_negated_guard_that_holds_is_the_one_that_refused() {
        let mut guards = fixed(&[("authorized", Ok(true)), ("fraud_hold", Ok(true))]);
        let decision = block_on(evaluate(&PAY, &mut guards));
        assert_eq!(
            decision,
            Ok(Decision {
                holds: false,
                decided_by: "fraud_hold",
                value: true
            })
        );
        assert_eq!(guards.calls, ["authorized", "fraud_hold"]);
    }

    #[test]
    fn or_stops_at_the_first_true_operand_and_otherwise_the_last_decides() {
        static EITHER: GuardExpr<&str> = Any(&[Guard("a"), All(&[Guard("b"), Guard("c")])]);
        let mut guards = fixed(&[("a", Ok(true)), ("b", Ok(true)), ("c", Ok(true))]);
        assert!(block_on(evaluate(&EITHER, &mut guards)).is_ok_and(|d| d.holds));
        assert_eq!(guards.calls, ["a"]);

        let mut guards = fixed(&[("a", Ok(false)), ("b", Ok(true)), ("c", Ok(false))]);
        let decision = block_on(evaluate(&EITHER, &mut guards));
        assert_eq!(
            decision,
            Ok(Decision {
                holds: false,
                decided_by: "c",
                value: false
            })
        );
        assert_eq!(guards.calls, ["a", "b", "c"]);
    }

    #[test]
    fn a_guard_error_stops_evaluation() {
        let mut guards = fixed(&[
            ("authorized", Err("database is gone")),
            ("fraud_hold", Ok(false)),
        ]);
        assert_eq!(
            block_on(evaluate(&PAY, &mut guards)),
            Err("database is gone")
        );
        assert_eq!(guards.calls, ["authorized"]);
    }

    #[test]
    fn expressions_print_as_written() {
        static NESTED: GuardExpr<&str> = All(&[
            Any(&[Guard("a"), Guard("b")]),
            Not(&Any(&[Guard("c"), Guard("d")])),
        ]);
        assert_eq!(NESTED.to_string(), "(a or b) and not (c or d)");
        assert_eq!(PAY.to_string(), "authorized and not fraud_hold");
        assert_eq!(NESTED.guards(), ["a", "b", "c", "d"]);
    }
}

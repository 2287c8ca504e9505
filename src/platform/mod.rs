//! The seam between the engine and an operating system. Everything above this
//! module is OS-neutral; each backend implements these traits with its own
//! syscalls.

pub mod agent;
pub mod baseline;
pub mod facts;
pub mod freebsd;
#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(unix)]
pub mod runlock;
pub mod seam;
pub mod stack_cache;
#[cfg(unix)]
pub mod unix;

pub use seam::{
    EnvError, Executor, KernelLog, KindProbe, Outcome, Platform, SKIP, Session, settle,
};

/// The backend of the machine this binary runs on.
pub fn native() -> Result<&'static dyn Platform, EnvError> {
    #[cfg(target_os = "linux")]
    {
        static LINUX: linux::Linux = linux::Linux;
        Ok(&LINUX)
    }
    #[cfg(target_os = "freebsd")]
    {
        static FREEBSD: freebsd::FreeBsd = freebsd::FreeBsd;
        Ok(&FREEBSD)
    }
    #[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
    {
        Err(EnvError::Unsupported(std::env::consts::OS))
    }
}

/// `ifstress __agent JID`: the body of an agent process (FreeBSD only).
pub fn agent_main(jid: i32) -> Result<i32, EnvError> {
    #[cfg(target_os = "freebsd")]
    {
        Ok(freebsd::agent_main(jid))
    }
    #[cfg(not(target_os = "freebsd"))]
    {
        let _ = jid;
        Err(EnvError::Unsupported("agents exist only on FreeBSD"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OpKind;
    use crate::plan::Op;

    fn op(kind: OpKind) -> Op {
        Op {
            kind,
            link: 0,
            other: 0,
            stack: 0,
            arg: 0,
        }
    }

    #[test]
    fn settle_counts_and_says_when_a_hint_is_stale() {
        let gone = &[libc::ENODEV];
        assert_eq!(
            settle(Ok(()), &op(OpKind::Move), gone),
            (Outcome::Ok, false)
        );
        assert_eq!(
            settle(Err(SKIP), &op(OpKind::Move), gone),
            (Outcome::Skipped, false)
        );
        assert_eq!(
            settle(Err(libc::ENODEV), &op(OpKind::Move), gone),
            (Outcome::Err(libc::ENODEV), true)
        );
        assert_eq!(
            settle(Err(libc::EBUSY), &op(OpKind::Move), gone),
            (Outcome::Err(libc::EBUSY), false)
        );
        assert_eq!(
            settle(Err(libc::EEXIST), &op(OpKind::Create), gone),
            (Outcome::Err(libc::EEXIST), true)
        );
        assert_eq!(
            settle(Err(libc::EEXIST), &op(OpKind::Rename), gone),
            (Outcome::Err(libc::EEXIST), false)
        );
        // Stack ops name no link to re-find.
        assert!(!settle(Err(libc::ENODEV), &op(OpKind::StackCreate), gone).1);
    }
}

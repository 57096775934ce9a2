//! The exchanges of RFC 7296, each an `impl SaCore` block: [`init`] (IKE_SA_INIT, section
//! 1.2), [`auth`] (IKE_AUTH, sections 1.2 and 2.15, with the AUTH payloads in [`authdata`]), [`informational`] (INFORMATIONAL,
//! section 1.4), [`create_child`] (CREATE_CHILD_SA for CHILD_SAs, sections 1.3 and 2.8),
//! [`rekey_ike`] (CREATE_CHILD_SA rekeying the IKE SA, section 2.18).

pub(crate) mod auth;
pub(crate) mod authdata;
pub(crate) mod create_child;
pub(crate) mod informational;
pub(crate) mod init;
pub(crate) mod rekey_ike;

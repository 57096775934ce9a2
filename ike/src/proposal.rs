//! Proposal negotiation (RFC 7296 sections 2.7 and 3.3.6).
//!
//! Our typed [`IkeProposal`]s / [`EspProposal`]s become SA payloads; as responder we pick the
//! *first of ours* (our preference order) that one of the peer's proposals accepts, taking
//! for each transform type the first of our algorithms the peer also offers; as initiator we
//! check that the responder's choice (one transform per type) is inside one of ours.
//!
//! For ESP in IKE_AUTH, D-H transforms are not sent and those received are ignored (RFC 7296
//! section 1.2: the first CHILD_SA takes its keys from the IKE SA). A missing ESN transform is
//! read as "no ESN".

use vpn_ike_crypto::PrfAlgorithm;
use vpn_ike_crypto::dh::DhGroup;
use vpn_ike_crypto::ike_cipher::{EncrAlgorithm, IntegAlgorithm};
use vpn_ike_crypto::keys::{EspSuite, IkeSuite};

use crate::codec::{
    self, EncrId, EsnId, IntegId, PrfId, ProtocolId, SecurityAssociation, Transform, TransformId,
};
use crate::config::{EspProposal, IkeProposal};

/// The negotiated IKE SA algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeChosen {
    /// Encryption, integrity and PRF.
    pub suite: IkeSuite,
    /// Diffie-Hellman group.
    pub dh: DhGroup,
}

/// The negotiated ESP algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspChosen {
    /// Encryption and integrity.
    pub suite: EspSuite,
    /// Extended sequence numbers.
    pub esn: bool,
    /// PFS group (CREATE_CHILD_SA only).
    pub dh: Option<DhGroup>,
}

/// One transform type's acceptable transforms, in preference order.
type Menu = Vec<(u8, Vec<Transform>)>;

const T_ENCR: u8 = 1;
const T_PRF: u8 = 2;
const T_INTEG: u8 = 3;
const T_DH: u8 = 4;
const T_ESN: u8 = 5;

fn encr_transform(e: EncrAlgorithm) -> Transform {
    Transform::with_key_length(
        TransformId::Encr(EncrId::from_value(e.transform_id())),
        e.key_bits(),
    )
}

fn integ_transform(i: IntegAlgorithm) -> Transform {
    Transform::new(TransformId::Integ(IntegId::from_value(i.transform_id())))
}

fn dh_transform(g: DhGroup) -> Transform {
    Transform::new(TransformId::Dh(codec::DhGroup::from_value(
        g.transform_id(),
    )))
}

fn ike_menu(p: &IkeProposal) -> Menu {
    let mut m = vec![(T_ENCR, p.encr.iter().map(|e| encr_transform(*e)).collect())];
    m.push((
        T_PRF,
        p.prf
            .iter()
            .map(|f| Transform::new(TransformId::Prf(PrfId::from_value(f.transform_id()))))
            .collect(),
    ));
    if !p.integ.is_empty() {
        m.push((
            T_INTEG,
            p.integ.iter().map(|i| integ_transform(*i)).collect(),
        ));
    }
    m.push((T_DH, p.dh.iter().map(|g| dh_transform(*g)).collect()));
    m
}

fn esp_menu(p: &EspProposal, with_dh: bool) -> Menu {
    let mut m = vec![(T_ENCR, p.encr.iter().map(|e| encr_transform(*e)).collect())];
    if !p.integ.is_empty() {
        m.push((
            T_INTEG,
            p.integ.iter().map(|i| integ_transform(*i)).collect(),
        ));
    }
    if with_dh && !p.dh.is_empty() {
        m.push((T_DH, p.dh.iter().map(|g| dh_transform(*g)).collect()));
    }
    let mut esn = vec![Transform::new(TransformId::Esn(EsnId::NoEsn))];
    if p.esn {
        esn.insert(0, Transform::new(TransformId::Esn(EsnId::Esn)));
    }
    m.push((T_ESN, esn));
    m
}

fn menu_to_proposal(
    number: u8,
    protocol: ProtocolId,
    spi: Vec<u8>,
    menu: &Menu,
) -> codec::Proposal {
    codec::Proposal {
        number,
        protocol,
        spi,
        transforms: menu.iter().flat_map(|(_, ts)| ts.iter().cloned()).collect(),
    }
}

fn numbered<T>(items: &[T]) -> impl Iterator<Item = (u8, &T)> {
    items
        .iter()
        .enumerate()
        .map(|(i, p)| (u8::try_from(i + 1).unwrap_or(u8::MAX), p))
}

/// The SA payload of an IKE_SA_INIT request (SPI empty).
#[must_use]
pub fn ike_sa_payload(ours: &[IkeProposal]) -> SecurityAssociation {
    SecurityAssociation {
        proposals: numbered(ours)
            .map(|(n, p)| menu_to_proposal(n, ProtocolId::Ike, Vec::new(), &ike_menu(p)))
            .collect(),
    }
}

/// The SA payload of a CHILD_SA request with our inbound SPI.
#[must_use]
pub fn esp_sa_payload(ours: &[EspProposal], spi: u32, with_dh: bool) -> SecurityAssociation {
    SecurityAssociation {
        proposals: numbered(ours)
            .map(|(n, p)| {
                menu_to_proposal(
                    n,
                    ProtocolId::Esp,
                    spi.to_be_bytes().to_vec(),
                    &esp_menu(p, with_dh),
                )
            })
            .collect(),
    }
}

fn same(a: &Transform, b: &Transform) -> bool {
    a.id == b.id && a.key_length() == b.key_length()
}

/// Whether a transform type may be left out of a proposal that omits it.
fn optional(t: u8) -> bool {
    t == T_ESN
}

/// Picks one transform per type of `menu` from `peer`'s transforms, or None.
fn pick(menu: &Menu, peer: &codec::Proposal, ignore_dh: bool) -> Option<Vec<Transform>> {
    // Every peer transform type must be one we negotiate (RFC 7296 section 3.3.6).
    for t in &peer.transforms {
        let ty = t.id.wire().0;
        if ignore_dh && ty == T_DH {
            continue;
        }
        let is_none_integ = ty == T_INTEG && t.id == TransformId::Integ(IntegId::None);
        if !menu.iter().any(|(mt, _)| *mt == ty) && !is_none_integ {
            return None;
        }
    }
    let mut chosen = Vec::new();
    for (ty, ours) in menu {
        let theirs: Vec<&Transform> = peer
            .transforms
            .iter()
            .filter(|t| t.id.wire().0 == *ty)
            .collect();
        if theirs.is_empty() && optional(*ty) {
            continue;
        }
        let hit = ours.iter().find(|o| theirs.iter().any(|t| same(o, t)))?;
        chosen.push(hit.clone());
    }
    Some(chosen)
}

/// Whether `resp` (one transform per type) lies inside `menu`.
fn inside(menu: &Menu, resp: &codec::Proposal, ignore_dh: bool) -> Option<Vec<Transform>> {
    let mut seen: Vec<u8> = Vec::new();
    for t in &resp.transforms {
        let ty = t.id.wire().0;
        if ignore_dh && ty == T_DH {
            continue;
        }
        if seen.contains(&ty) {
            return None;
        }
        seen.push(ty);
        let (_, ours) = menu.iter().find(|(mt, _)| *mt == ty)?;
        if !ours.iter().any(|o| same(o, t)) {
            return None;
        }
    }
    if menu
        .iter()
        .any(|(ty, _)| !seen.contains(ty) && !optional(*ty))
    {
        return None;
    }
    Some(
        resp.transforms
            .iter()
            .filter(|t| !(ignore_dh && t.id.wire().0 == T_DH))
            .cloned()
            .collect(),
    )
}

fn typed_ike(transforms: &[Transform]) -> Option<IkeChosen> {
    let mut encr = None;
    let mut integ = None;
    let mut prf = None;
    let mut dh = None;
    for t in transforms {
        match t.id {
            TransformId::Encr(e) => {
                encr = EncrAlgorithm::from_transform(e.value(), t.key_length()?);
            }
            TransformId::Integ(i) => integ = IntegAlgorithm::from_transform_id(i.value()),
            TransformId::Prf(p) => prf = PrfAlgorithm::from_transform_id(p.value()),
            TransformId::Dh(g) => dh = DhGroup::from_transform_id(g.value()),
            _ => {}
        }
    }
    Some(IkeChosen {
        suite: IkeSuite {
            encr: encr?,
            integ,
            prf: prf?,
        },
        dh: dh?,
    })
}

fn typed_esp(transforms: &[Transform]) -> Option<EspChosen> {
    let mut encr = None;
    let mut integ = None;
    let mut esn = false;
    let mut dh = None;
    for t in transforms {
        match t.id {
            TransformId::Encr(e) => {
                encr = EncrAlgorithm::from_transform(e.value(), t.key_length()?);
            }
            TransformId::Integ(i) => integ = IntegAlgorithm::from_transform_id(i.value()),
            TransformId::Esn(e) => esn = e == EsnId::Esn,
            TransformId::Dh(g) => dh = DhGroup::from_transform_id(g.value()),
            _ => {}
        }
    }
    Some(EspChosen {
        suite: EspSuite { encr: encr?, integ },
        esn,
        dh,
    })
}

/// The responder's choice for IKE_SA_INIT: the response proposal and the typed algorithms.
/// When the peer's KE group is acceptable within the chosen proposal it is preferred, to
/// avoid an INVALID_KE_PAYLOAD round trip.
#[must_use]
pub fn select_ike(
    ours: &[IkeProposal],
    peer: &SecurityAssociation,
    peer_ke: Option<DhGroup>,
) -> Option<(codec::Proposal, IkeChosen)> {
    for mine in ours {
        let mut menu = ike_menu(mine);
        if let Some(g) = peer_ke.filter(|g| mine.dh.contains(g)) {
            // Move the peer's KE group to the front of our DH list.
            if let Some((_, dhs)) = menu.iter_mut().find(|(t, _)| *t == T_DH) {
                dhs.retain(|t| t.id != dh_transform(g).id);
                dhs.insert(0, dh_transform(g));
            }
        }
        for p in peer
            .proposals
            .iter()
            .filter(|p| p.protocol == ProtocolId::Ike && p.spi.is_empty())
        {
            if let Some(chosen) = pick(&menu, p, false)
                && let Some(typed) = typed_ike(&chosen)
            {
                let prop = codec::Proposal {
                    number: p.number,
                    protocol: ProtocolId::Ike,
                    spi: Vec::new(),
                    transforms: chosen,
                };
                return Some((prop, typed));
            }
        }
    }
    None
}

/// The responder's choice for a rekeyed IKE SA (RFC 7296 section 2.18): like [`select_ike`],
/// among proposals that carry the peer's new 8-byte IKE SPI; the response proposal (without
/// our SPI yet), the algorithms and the peer's SPI.
pub fn select_ike_rekey(
    ours: &[IkeProposal],
    peer: &SecurityAssociation,
    peer_ke: Option<DhGroup>,
) -> Option<(codec::Proposal, IkeChosen, [u8; 8])> {
    for mine in ours {
        let mut menu = ike_menu(mine);
        if let Some(g) = peer_ke.filter(|g| mine.dh.contains(g))
            && let Some((_, dhs)) = menu.iter_mut().find(|(t, _)| *t == T_DH)
        {
            dhs.retain(|t| t.id != dh_transform(g).id);
            dhs.insert(0, dh_transform(g));
        }
        for p in peer
            .proposals
            .iter()
            .filter(|p| p.protocol == ProtocolId::Ike)
        {
            let Ok(spi) = <[u8; 8]>::try_from(p.spi.as_slice()) else {
                continue;
            };
            if let Some(chosen) = pick(&menu, p, false)
                && let Some(typed) = typed_ike(&chosen)
            {
                let prop = codec::Proposal {
                    number: p.number,
                    protocol: ProtocolId::Ike,
                    spi: Vec::new(),
                    transforms: chosen,
                };
                return Some((prop, typed, spi));
            }
        }
    }
    None
}

/// The initiator's check of the responder's IKE SA choice.
#[must_use]
pub fn accept_ike(ours: &[IkeProposal], resp: &SecurityAssociation) -> Option<IkeChosen> {
    let [p] = resp.proposals.as_slice() else {
        return None;
    };
    if p.protocol != ProtocolId::Ike || !p.spi.is_empty() {
        return None;
    }
    ours.iter()
        .find_map(|mine| inside(&ike_menu(mine), p, false))
        .and_then(|t| typed_ike(&t))
}

/// The responder's choice of an ESP proposal: the response proposal (with `our_spi`), the
/// typed algorithms and the peer's inbound SPI (our outbound SPI).
#[must_use]
pub fn select_esp(
    ours: &[EspProposal],
    peer: &SecurityAssociation,
    our_spi: u32,
    with_dh: bool,
) -> Option<(codec::Proposal, EspChosen, u32)> {
    for mine in ours {
        let menu = esp_menu(mine, with_dh);
        for p in peer
            .proposals
            .iter()
            .filter(|p| p.protocol == ProtocolId::Esp)
        {
            let Ok(spi) = <[u8; 4]>::try_from(p.spi.as_slice()) else {
                continue;
            };
            if let Some(chosen) = pick(&menu, p, !with_dh)
                && let Some(typed) = typed_esp(&chosen)
            {
                let prop = codec::Proposal {
                    number: p.number,
                    protocol: ProtocolId::Esp,
                    spi: our_spi.to_be_bytes().to_vec(),
                    transforms: chosen,
                };
                return Some((prop, typed, u32::from_be_bytes(spi)));
            }
        }
    }
    None
}

/// The initiator's check of the responder's ESP choice; returns it and the responder's SPI.
#[must_use]
pub fn accept_esp(
    ours: &[EspProposal],
    resp: &SecurityAssociation,
    with_dh: bool,
) -> Option<(EspChosen, u32)> {
    let [p] = resp.proposals.as_slice() else {
        return None;
    };
    let spi = u32::from_be_bytes(<[u8; 4]>::try_from(p.spi.as_slice()).ok()?);
    if p.protocol != ProtocolId::Esp || spi == 0 {
        return None;
    }
    ours.iter()
        .find_map(|mine| inside(&esp_menu(mine, with_dh), p, !with_dh))
        .and_then(|t| typed_esp(&t))
        .map(|c| (c, spi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcm() -> IkeProposal {
        IkeProposal {
            encr: vec![EncrAlgorithm::AesGcm16_256],
            integ: vec![],
            prf: vec![PrfAlgorithm::HmacSha256],
            dh: vec![DhGroup::Modp2048, DhGroup::Ecp256],
        }
    }

    fn cbc() -> IkeProposal {
        IkeProposal {
            encr: vec![EncrAlgorithm::AesCbc128],
            integ: vec![IntegAlgorithm::HmacSha256_128],
            prf: vec![PrfAlgorithm::HmacSha256],
            dh: vec![DhGroup::Modp1024],
        }
    }

    #[test]
    fn responder_prefers_its_own_order() {
        let peer = ike_sa_payload(&[cbc(), gcm()]);
        let (prop, chosen) = select_ike(&[gcm(), cbc()], &peer, None).unwrap();
        assert_eq!(prop.number, 2);
        assert_eq!(chosen.suite.encr, EncrAlgorithm::AesGcm16_256);
        assert_eq!(chosen.dh, DhGroup::Modp2048);
        let resp = SecurityAssociation {
            proposals: vec![prop],
        };
        assert_eq!(accept_ike(&[cbc(), gcm()], &resp), Some(chosen));
    }

    #[test]
    fn peer_ke_group_is_preferred_when_acceptable() {
        let peer = ike_sa_payload(&[gcm()]);
        let (_, chosen) = select_ike(&[gcm()], &peer, Some(DhGroup::Ecp256)).unwrap();
        assert_eq!(chosen.dh, DhGroup::Ecp256);
    }

    #[test]
    fn no_overlap_is_none() {
        let peer = ike_sa_payload(&[cbc()]);
        assert!(select_ike(&[gcm()], &peer, None).is_none());
    }

    #[test]
    fn initiator_rejects_a_choice_it_did_not_offer() {
        let (prop, _) = select_ike(&[cbc()], &ike_sa_payload(&[cbc()]), None).unwrap();
        let resp = SecurityAssociation {
            proposals: vec![prop],
        };
        assert!(accept_ike(&[gcm()], &resp).is_none());
    }

    #[test]
    fn esp_selection_ignores_dh_in_ike_auth() {
        let mine = EspProposal {
            encr: vec![EncrAlgorithm::AesCbc256],
            integ: vec![IntegAlgorithm::HmacSha256_128],
            dh: vec![DhGroup::Modp2048],
            esn: false,
        };
        let offer = esp_sa_payload(std::slice::from_ref(&mine), 0x1234_5678, true);
        let (prop, chosen, spi) =
            select_esp(std::slice::from_ref(&mine), &offer, 0xaabb_ccdd, false).unwrap();
        assert_eq!(spi, 0x1234_5678);
        assert_eq!(chosen.suite.integ, Some(IntegAlgorithm::HmacSha256_128));
        let resp = SecurityAssociation {
            proposals: vec![prop],
        };
        let (c2, spi_r) = accept_esp(&[mine], &resp, false).unwrap();
        assert_eq!(c2, chosen);
        assert_eq!(spi_r, 0xaabb_ccdd);
    }
}

//! Payload encoding: [`Payload`] values to bytes, refusing what decoding would reject.

use super::error::EncodeError;
use super::payload::*;
use super::types::{PayloadType, TsType};
use super::wire::{check_cap, fit_u8, fit_u16, len16_placeholder, patch_len16};
use super::{
    MAX_ATTRIBUTES_PER_TRANSFORM, MAX_CFG_ATTRIBUTES, MAX_DELETE_SPIS, MAX_PAYLOADS, MAX_PROPOSALS,
    MAX_TRAFFIC_SELECTORS, MAX_TRANSFORMS_PER_PROPOSAL, NONCE_MAX_LEN, NONCE_MIN_LEN,
};

/// Appends a payload chain. The Next Payload of each generic header is the type of the
/// following payload, except for SK/SKF, whose Next Payload is their inner type.
pub(crate) fn encode_chain(
    payloads: &[Payload],
    out: &mut Vec<u8>,
    allow_encrypted: bool,
) -> Result<(), EncodeError> {
    check_cap(payloads.len(), MAX_PAYLOADS, "payload count")?;
    for (index, payload) in payloads.iter().enumerate() {
        let next = match payload {
            Payload::Encrypted(e) => {
                if !allow_encrypted || index + 1 != payloads.len() {
                    return Err(EncodeError::MisplacedEncrypted { index });
                }
                e.inner_next.value()
            }
            Payload::EncryptedFragment(f) => {
                if !allow_encrypted || index + 1 != payloads.len() {
                    return Err(EncodeError::MisplacedEncrypted { index });
                }
                f.inner_next.value()
            }
            _ => payloads
                .get(index + 1)
                .map_or(0, |p| p.payload_type().value()),
        };
        let start = out.len();
        out.push(next);
        out.push(0);
        let at = len16_placeholder(out);
        payload.encode_body(out)?;
        patch_len16(out, at, start, "payload length")?;
    }
    Ok(())
}

impl Payload {
    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::SecurityAssociation(sa) => encode_sa(sa, out)?,
            Self::KeyExchange(ke) => {
                out.extend_from_slice(&ke.group.value().to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&ke.data);
            }
            Self::IdInitiator(id) | Self::IdResponder(id) => {
                out.extend_from_slice(&[id.id_type.value(), 0, 0, 0]);
                out.extend_from_slice(&id.data);
            }
            Self::Certificate(c) | Self::CertificateRequest(c) => {
                out.push(c.encoding.value());
                out.extend_from_slice(&c.data);
            }
            Self::Authentication(a) => {
                out.extend_from_slice(&[a.method.value(), 0, 0, 0]);
                out.extend_from_slice(&a.data);
            }
            Self::Nonce(n) => {
                if n.len() < NONCE_MIN_LEN {
                    return Err(EncodeError::TooShort {
                        what: "nonce",
                        length: n.len(),
                        minimum: NONCE_MIN_LEN,
                    });
                }
                check_cap(n.len(), NONCE_MAX_LEN, "nonce")?;
                out.extend_from_slice(n);
            }
            Self::Notify(n) => {
                out.push(n.protocol.value());
                out.push(fit_u8(n.spi.len(), "Notify SPI")?);
                out.extend_from_slice(&n.notify_type.value().to_be_bytes());
                out.extend_from_slice(&n.spi);
                out.extend_from_slice(&n.data);
            }
            Self::Delete(d) => {
                let size = delete_spi_size(d.protocol).ok_or(EncodeError::InvalidValue {
                    what: "Delete protocol",
                    value: u32::from(d.protocol.value()),
                })?;
                if size == 0 && !d.spis.is_empty() {
                    return Err(EncodeError::TooLong {
                        what: "IKE Delete SPI count",
                        length: d.spis.len(),
                        limit: 0,
                    });
                }
                check_cap(d.spis.len(), MAX_DELETE_SPIS, "Delete SPI count")?;
                out.push(d.protocol.value());
                out.push(size);
                out.extend_from_slice(&fit_u16(d.spis.len(), "Delete SPI count")?.to_be_bytes());
                for spi in &d.spis {
                    out.extend_from_slice(&spi.to_be_bytes());
                }
            }
            Self::VendorId(v) | Self::Eap(v) => {
                if matches!(self, Self::Eap(_)) && v.len() < 4 {
                    return Err(EncodeError::TooShort {
                        what: "EAP message",
                        length: v.len(),
                        minimum: 4,
                    });
                }
                out.extend_from_slice(v);
            }
            Self::TsInitiator(ts) | Self::TsResponder(ts) => encode_ts(ts, out)?,
            Self::Encrypted(e) => out.extend_from_slice(&e.data),
            Self::Configuration(c) => encode_cfg(c, out)?,
            Self::EncryptedFragment(f) => {
                if f.fragment_number == 0 || f.fragment_number > f.total_fragments {
                    return Err(EncodeError::InvalidValue {
                        what: "fragment number",
                        value: u32::from(f.fragment_number),
                    });
                }
                out.extend_from_slice(&f.fragment_number.to_be_bytes());
                out.extend_from_slice(&f.total_fragments.to_be_bytes());
                out.extend_from_slice(&f.data);
            }
            Self::Unknown { payload_type, data } => {
                if PayloadType::from_value(*payload_type).is_known() {
                    return Err(EncodeError::InvalidValue {
                        what: "unknown payload type",
                        value: u32::from(*payload_type),
                    });
                }
                out.extend_from_slice(data);
            }
        }
        Ok(())
    }
}

fn encode_sa(sa: &SecurityAssociation, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if sa.proposals.is_empty() {
        return Err(EncodeError::TooShort {
            what: "proposal count",
            length: 0,
            minimum: 1,
        });
    }
    check_cap(sa.proposals.len(), MAX_PROPOSALS, "proposal count")?;
    for (i, p) in sa.proposals.iter().enumerate() {
        let start = out.len();
        let last = if i + 1 == sa.proposals.len() {
            LAST
        } else {
            MORE_PROPOSALS
        };
        out.extend_from_slice(&[last, 0]);
        let at = len16_placeholder(out);
        check_cap(
            p.transforms.len(),
            MAX_TRANSFORMS_PER_PROPOSAL,
            "transform count",
        )?;
        out.extend_from_slice(&[
            p.number,
            p.protocol.value(),
            fit_u8(p.spi.len(), "proposal SPI")?,
            fit_u8(p.transforms.len(), "transform count")?,
        ]);
        out.extend_from_slice(&p.spi);
        for (j, t) in p.transforms.iter().enumerate() {
            encode_transform(t, j + 1 == p.transforms.len(), out)?;
        }
        patch_len16(out, at, start, "proposal length")?;
    }
    Ok(())
}

fn encode_transform(t: &Transform, is_last: bool, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_cap(
        t.attributes.len(),
        MAX_ATTRIBUTES_PER_TRANSFORM,
        "attribute count",
    )?;
    let start = out.len();
    out.extend_from_slice(&[if is_last { LAST } else { MORE_TRANSFORMS }, 0]);
    let at = len16_placeholder(out);
    let (ttype, id) = t.id.wire();
    out.extend_from_slice(&[ttype, 0]);
    out.extend_from_slice(&id.to_be_bytes());
    for a in &t.attributes {
        match a {
            TransformAttribute::KeyLength(bits) => {
                out.extend_from_slice(&(ATTR_TV | ATTR_KEY_LENGTH).to_be_bytes());
                out.extend_from_slice(&bits.to_be_bytes());
            }
            TransformAttribute::Tv { attr_type, value } => {
                if *attr_type & ATTR_TV != 0 || *attr_type == ATTR_KEY_LENGTH {
                    return Err(EncodeError::InvalidValue {
                        what: "TV attribute type",
                        value: u32::from(*attr_type),
                    });
                }
                out.extend_from_slice(&(ATTR_TV | attr_type).to_be_bytes());
                out.extend_from_slice(&value.to_be_bytes());
            }
            TransformAttribute::Tlv { attr_type, value } => {
                if *attr_type & ATTR_TV != 0 {
                    return Err(EncodeError::InvalidValue {
                        what: "TLV attribute type",
                        value: u32::from(*attr_type),
                    });
                }
                out.extend_from_slice(&attr_type.to_be_bytes());
                out.extend_from_slice(&fit_u16(value.len(), "attribute value")?.to_be_bytes());
                out.extend_from_slice(value);
            }
        }
    }
    patch_len16(out, at, start, "transform length")
}

fn encode_ts(ts: &TrafficSelectors, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_cap(
        ts.selectors.len(),
        MAX_TRAFFIC_SELECTORS,
        "traffic selector count",
    )?;
    out.extend_from_slice(&[
        fit_u8(ts.selectors.len(), "traffic selector count")?,
        0,
        0,
        0,
    ]);
    for s in &ts.selectors {
        let start = out.len();
        let ts_type = s.ts_type();
        if let AddressRange::Other { ts_type: t, .. } = &s.range
            && TsType::from_value(*t).is_known()
        {
            return Err(EncodeError::InvalidValue {
                what: "opaque traffic selector type",
                value: u32::from(*t),
            });
        }
        out.extend_from_slice(&[ts_type.value(), s.ip_protocol]);
        let at = len16_placeholder(out);
        out.extend_from_slice(&s.start_port.to_be_bytes());
        out.extend_from_slice(&s.end_port.to_be_bytes());
        match &s.range {
            AddressRange::V4 { start, end } => {
                out.extend_from_slice(&start.octets());
                out.extend_from_slice(&end.octets());
            }
            AddressRange::V6 { start, end } => {
                out.extend_from_slice(&start.octets());
                out.extend_from_slice(&end.octets());
            }
            AddressRange::Other { data, .. } => out.extend_from_slice(data),
        }
        patch_len16(out, at, start, "traffic selector length")?;
    }
    Ok(())
}

fn encode_cfg(c: &Configuration, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_cap(
        c.attributes.len(),
        MAX_CFG_ATTRIBUTES,
        "configuration attribute count",
    )?;
    out.extend_from_slice(&[c.cfg_type.value(), 0, 0, 0]);
    for a in &c.attributes {
        let t = a.attr_type.value();
        if t & CFG_ATTR_RESERVED != 0 {
            return Err(EncodeError::InvalidValue {
                what: "configuration attribute type",
                value: u32::from(t),
            });
        }
        out.extend_from_slice(&t.to_be_bytes());
        out.extend_from_slice(&fit_u16(a.value.len(), "configuration attribute")?.to_be_bytes());
        out.extend_from_slice(&a.value);
    }
    Ok(())
}

//! Payload decoding: bytes to [`Payload`] values, every length checked.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::DecodeError;
use super::payload::*;
use super::types::{PayloadType, ProtocolId, TsType};
use super::wire::Reader;
use super::{
    MAX_ATTRIBUTES_PER_TRANSFORM, MAX_CFG_ATTRIBUTES, MAX_DELETE_SPIS, MAX_PAYLOADS, MAX_PROPOSALS,
    MAX_TRAFFIC_SELECTORS, MAX_TRANSFORMS_PER_PROPOSAL, NONCE_MAX_LEN, NONCE_MIN_LEN,
};

/// Smallest body (after the generic header) each known payload type can have.
fn min_body_len(t: PayloadType) -> usize {
    match t {
        PayloadType::SecurityAssociation => 8,
        PayloadType::Nonce => NONCE_MIN_LEN,
        PayloadType::Certificate | PayloadType::CertificateRequest => 1,
        PayloadType::VendorId | PayloadType::Encrypted => 0,
        _ => 4,
    }
}

/// Decodes a payload chain starting with type `first`. `base` is the absolute offset of
/// `buf[0]`, for error offsets.
pub(crate) fn decode_chain(
    first: PayloadType,
    buf: &[u8],
    base: usize,
    allow_encrypted: bool,
) -> Result<Vec<Payload>, DecodeError> {
    let mut r = Reader::new(buf, base);
    let mut payloads = Vec::new();
    let mut current = first.value();
    while current != 0 {
        if payloads.len() >= MAX_PAYLOADS {
            return Err(DecodeError::TooMany {
                what: "payloads",
                limit: MAX_PAYLOADS,
            });
        }
        let offset = r.offset();
        let available = r.remaining();
        let [next, flags, l0, l1] = r.array::<GENERIC_HEADER_LEN>("generic payload header")?;
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        if length < GENERIC_HEADER_LEN {
            return Err(DecodeError::PayloadTooShort {
                payload_type: current,
                offset,
                length,
                minimum: GENERIC_HEADER_LEN,
            });
        }
        if length > available {
            return Err(DecodeError::PayloadOverrun {
                payload_type: current,
                offset,
                length,
                available,
            });
        }
        let body = r.bytes(length - GENERIC_HEADER_LEN, "payload body")?;
        let ptype = PayloadType::from_value(current);
        if !ptype.is_known() {
            if flags & CRITICAL != 0 {
                return Err(DecodeError::UnsupportedCriticalPayload {
                    payload_type: current,
                    offset,
                });
            }
            payloads.push(Payload::Unknown {
                payload_type: current,
                data: body.to_vec(),
            });
            current = next;
            continue;
        }
        let minimum = min_body_len(ptype);
        if body.len() < minimum {
            return Err(DecodeError::PayloadTooShort {
                payload_type: current,
                offset,
                length,
                minimum: minimum + GENERIC_HEADER_LEN,
            });
        }
        let payload = decode_body(ptype, next, body, offset)?;
        if payload.is_encrypted() {
            if !allow_encrypted {
                return Err(DecodeError::NestedEncrypted { offset });
            }
            if !r.is_empty() {
                return Err(DecodeError::EncryptedNotLast { offset });
            }
            payloads.push(payload);
            return Ok(payloads);
        }
        payloads.push(payload);
        current = next;
    }
    if !r.is_empty() {
        return Err(DecodeError::TrailingData {
            offset: r.offset(),
            count: r.remaining(),
        });
    }
    Ok(payloads)
}

/// Decodes the body of a known payload type; `offset` is that of its generic header.
fn decode_body(
    ptype: PayloadType,
    next: u8,
    body: &[u8],
    offset: usize,
) -> Result<Payload, DecodeError> {
    let mut r = Reader::new(body, offset + GENERIC_HEADER_LEN);
    let payload = match ptype {
        PayloadType::SecurityAssociation => Payload::SecurityAssociation(SecurityAssociation {
            proposals: decode_proposals(&mut r)?,
        }),
        PayloadType::KeyExchange => {
            let group = r.u16("KE header")?.into();
            let _reserved = r.u16("KE header")?;
            Payload::KeyExchange(KeyExchange {
                group,
                data: r.rest().to_vec(),
            })
        }
        PayloadType::IdInitiator | PayloadType::IdResponder => {
            let [id_type, _, _, _] = r.array::<4>("ID header")?;
            let id = Identification {
                id_type: id_type.into(),
                data: r.rest().to_vec(),
            };
            if ptype == PayloadType::IdInitiator {
                Payload::IdInitiator(id)
            } else {
                Payload::IdResponder(id)
            }
        }
        PayloadType::Certificate | PayloadType::CertificateRequest => {
            let cert = Certificate {
                encoding: r.u8("CERT header")?.into(),
                data: r.rest().to_vec(),
            };
            if ptype == PayloadType::Certificate {
                Payload::Certificate(cert)
            } else {
                Payload::CertificateRequest(cert)
            }
        }
        PayloadType::Authentication => {
            let [method, _, _, _] = r.array::<4>("AUTH header")?;
            Payload::Authentication(Authentication {
                method: method.into(),
                data: r.rest().to_vec(),
            })
        }
        PayloadType::Nonce => {
            if body.len() > NONCE_MAX_LEN {
                return Err(DecodeError::NonceLength {
                    offset,
                    length: body.len(),
                });
            }
            Payload::Nonce(body.to_vec())
        }
        PayloadType::Notify => {
            let [protocol, spi_size] = r.array::<2>("Notify header")?;
            let notify_type = r.u16("Notify header")?.into();
            let spi = r.bytes(usize::from(spi_size), "Notify SPI")?.to_vec();
            Payload::Notify(Notify {
                protocol: protocol.into(),
                spi,
                notify_type,
                data: r.rest().to_vec(),
            })
        }
        PayloadType::Delete => Payload::Delete(decode_delete(&mut r, offset)?),
        PayloadType::VendorId => Payload::VendorId(body.to_vec()),
        PayloadType::TsInitiator => Payload::TsInitiator(decode_ts(&mut r, offset)?),
        PayloadType::TsResponder => Payload::TsResponder(decode_ts(&mut r, offset)?),
        PayloadType::Encrypted => Payload::Encrypted(Encrypted {
            inner_next: next.into(),
            data: body.to_vec(),
        }),
        PayloadType::Configuration => Payload::Configuration(decode_cfg(&mut r)?),
        PayloadType::Eap => Payload::Eap(body.to_vec()),
        PayloadType::EncryptedFragment => {
            let number = r.u16("SKF header")?;
            let total = r.u16("SKF header")?;
            if number == 0 || number > total {
                return Err(DecodeError::InvalidFragmentNumber {
                    offset,
                    number,
                    total,
                });
            }
            Payload::EncryptedFragment(EncryptedFragment {
                inner_next: next.into(),
                fragment_number: number,
                total_fragments: total,
                data: r.rest().to_vec(),
            })
        }
        PayloadType::NoNextPayload | PayloadType::Unknown(_) => Payload::Unknown {
            payload_type: ptype.value(),
            data: body.to_vec(),
        },
    };
    Ok(payload)
}

fn decode_proposals(r: &mut Reader<'_>) -> Result<Vec<Proposal>, DecodeError> {
    let mut proposals = Vec::new();
    loop {
        if proposals.len() >= MAX_PROPOSALS {
            return Err(DecodeError::TooMany {
                what: "proposals",
                limit: MAX_PROPOSALS,
            });
        }
        let p_off = r.offset();
        let available = r.remaining();
        let h = r.array::<PROPOSAL_HEADER_LEN>("proposal header")?;
        let [
            last,
            _reserved,
            l0,
            l1,
            number,
            protocol,
            spi_size,
            n_transforms,
        ] = h;
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        if length < PROPOSAL_HEADER_LEN + usize::from(spi_size) || length > available {
            return Err(DecodeError::BadLength {
                what: "proposal",
                offset: p_off,
                length,
            });
        }
        let inner = r.bytes(length - PROPOSAL_HEADER_LEN, "proposal")?;
        let mut pr = Reader::new(inner, p_off + PROPOSAL_HEADER_LEN);
        let spi = pr.bytes(usize::from(spi_size), "proposal SPI")?.to_vec();
        let declared = usize::from(n_transforms);
        if declared > MAX_TRANSFORMS_PER_PROPOSAL {
            return Err(DecodeError::TooMany {
                what: "transforms in a proposal",
                limit: MAX_TRANSFORMS_PER_PROPOSAL,
            });
        }
        let mut transforms = Vec::with_capacity(declared);
        for i in 0..declared {
            if pr.is_empty() {
                return Err(DecodeError::CountMismatch {
                    what: "transforms",
                    offset: p_off,
                    declared,
                    found: i,
                });
            }
            transforms.push(decode_transform(&mut pr, i + 1 == declared)?);
        }
        if !pr.is_empty() {
            return Err(DecodeError::BadLength {
                what: "proposal",
                offset: p_off,
                length,
            });
        }
        let valid_last = match last {
            LAST => r.is_empty(),
            MORE_PROPOSALS => !r.is_empty(),
            _ => false,
        };
        if !valid_last {
            return Err(DecodeError::BadLastSubstructure {
                what: "proposal",
                offset: p_off,
                value: last,
            });
        }
        proposals.push(Proposal {
            number,
            protocol: protocol.into(),
            spi,
            transforms,
        });
        if last == LAST {
            return Ok(proposals);
        }
    }
}

fn decode_transform(r: &mut Reader<'_>, is_last: bool) -> Result<Transform, DecodeError> {
    let t_off = r.offset();
    let available = r.remaining();
    let h = r.array::<TRANSFORM_HEADER_LEN>("transform header")?;
    let [last, _reserved, l0, l1, transform_type, _reserved2, i0, i1] = h;
    let expected_last = if is_last { LAST } else { MORE_TRANSFORMS };
    if last != expected_last {
        return Err(DecodeError::BadLastSubstructure {
            what: "transform",
            offset: t_off,
            value: last,
        });
    }
    let length = usize::from(u16::from_be_bytes([l0, l1]));
    if length < TRANSFORM_HEADER_LEN || length > available {
        return Err(DecodeError::BadLength {
            what: "transform",
            offset: t_off,
            length,
        });
    }
    let attr_bytes = r.bytes(length - TRANSFORM_HEADER_LEN, "transform")?;
    let mut ar = Reader::new(attr_bytes, t_off + TRANSFORM_HEADER_LEN);
    let mut attributes = Vec::new();
    while !ar.is_empty() {
        if attributes.len() >= MAX_ATTRIBUTES_PER_TRANSFORM {
            return Err(DecodeError::TooMany {
                what: "attributes in a transform",
                limit: MAX_ATTRIBUTES_PER_TRANSFORM,
            });
        }
        let raw_type = ar.u16("transform attribute")?;
        let attr_type = raw_type & !ATTR_TV;
        if raw_type & ATTR_TV != 0 {
            let value = ar.u16("transform attribute")?;
            attributes.push(if attr_type == ATTR_KEY_LENGTH {
                TransformAttribute::KeyLength(value)
            } else {
                TransformAttribute::Tv { attr_type, value }
            });
        } else {
            let len = usize::from(ar.u16("transform attribute")?);
            let value = ar.bytes(len, "transform attribute value")?.to_vec();
            attributes.push(TransformAttribute::Tlv { attr_type, value });
        }
    }
    Ok(Transform {
        id: TransformId::from_wire(transform_type, u16::from_be_bytes([i0, i1])),
        attributes,
    })
}

fn decode_delete(r: &mut Reader<'_>, offset: usize) -> Result<Delete, DecodeError> {
    let [protocol_raw, size] = r.array::<2>("Delete header")?;
    let declared = usize::from(r.u16("Delete header")?);
    let protocol = ProtocolId::from_value(protocol_raw);
    if delete_spi_size(protocol) != Some(size) {
        return Err(DecodeError::InvalidSpiSize {
            what: "Delete",
            offset,
            protocol: protocol_raw,
            size,
        });
    }
    if declared > MAX_DELETE_SPIS {
        return Err(DecodeError::TooMany {
            what: "SPIs in a Delete payload",
            limit: MAX_DELETE_SPIS,
        });
    }
    let rest = r.rest();
    if size == 0 {
        if declared != 0 {
            return Err(DecodeError::CountMismatch {
                what: "Delete SPIs",
                offset,
                declared,
                found: 0,
            });
        }
        if !rest.is_empty() {
            return Err(DecodeError::TrailingData {
                offset: r.offset() - rest.len(),
                count: rest.len(),
            });
        }
    } else if rest.len() != declared * usize::from(size) {
        return Err(DecodeError::CountMismatch {
            what: "Delete SPIs",
            offset,
            declared,
            found: rest.len() / usize::from(size),
        });
    }
    let spis = rest
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Delete { protocol, spis })
}

fn decode_ts(r: &mut Reader<'_>, offset: usize) -> Result<TrafficSelectors, DecodeError> {
    let [count, _, _, _] = r.array::<4>("TS header")?;
    let declared = usize::from(count);
    if declared > MAX_TRAFFIC_SELECTORS {
        return Err(DecodeError::TooMany {
            what: "traffic selectors",
            limit: MAX_TRAFFIC_SELECTORS,
        });
    }
    let mut selectors = Vec::with_capacity(declared);
    for i in 0..declared {
        if r.is_empty() {
            return Err(DecodeError::CountMismatch {
                what: "traffic selectors",
                offset,
                declared,
                found: i,
            });
        }
        let ts_off = r.offset();
        let available = r.remaining();
        let [ts_type, ip_protocol] = r.array::<2>("traffic selector")?;
        let length = usize::from(r.u16("traffic selector")?);
        let length_ok = match TsType::from_value(ts_type) {
            TsType::Ipv4AddrRange => length == TS_V4_LEN,
            TsType::Ipv6AddrRange => length == TS_V6_LEN,
            TsType::Unknown(_) => length >= TS_HEADER_LEN,
        };
        if !length_ok || length > available {
            return Err(DecodeError::BadLength {
                what: "traffic selector",
                offset: ts_off,
                length,
            });
        }
        let start_port = r.u16("traffic selector")?;
        let end_port = r.u16("traffic selector")?;
        let range = match TsType::from_value(ts_type) {
            TsType::Ipv4AddrRange => AddressRange::V4 {
                start: Ipv4Addr::from(r.array::<4>("traffic selector")?),
                end: Ipv4Addr::from(r.array::<4>("traffic selector")?),
            },
            TsType::Ipv6AddrRange => AddressRange::V6 {
                start: Ipv6Addr::from(r.array::<16>("traffic selector")?),
                end: Ipv6Addr::from(r.array::<16>("traffic selector")?),
            },
            TsType::Unknown(_) => AddressRange::Other {
                ts_type,
                data: r
                    .bytes(length - TS_HEADER_LEN, "traffic selector")?
                    .to_vec(),
            },
        };
        selectors.push(TrafficSelector {
            ip_protocol,
            start_port,
            end_port,
            range,
        });
    }
    if !r.is_empty() {
        return Err(DecodeError::TrailingData {
            offset: r.offset(),
            count: r.remaining(),
        });
    }
    Ok(TrafficSelectors { selectors })
}

fn decode_cfg(r: &mut Reader<'_>) -> Result<Configuration, DecodeError> {
    let [cfg_type, _, _, _] = r.array::<4>("CP header")?;
    let mut attributes = Vec::new();
    while !r.is_empty() {
        if attributes.len() >= MAX_CFG_ATTRIBUTES {
            return Err(DecodeError::TooMany {
                what: "configuration attributes",
                limit: MAX_CFG_ATTRIBUTES,
            });
        }
        let attr_type = r.u16("configuration attribute")? & !CFG_ATTR_RESERVED;
        let len = usize::from(r.u16("configuration attribute")?);
        let value = r.bytes(len, "configuration attribute value")?.to_vec();
        attributes.push(CfgAttribute {
            attr_type: attr_type.into(),
            value,
        });
    }
    Ok(Configuration {
        cfg_type: cfg_type.into(),
        attributes,
    })
}

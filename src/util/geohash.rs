//! Redis 7.0's geohash math (`geohash.c`, `geohash_helper.c` and the pure
//! parts of `geo.c`): the 52-bit interleaved hash a GEO member's score is,
//! the nine boxes a search scans, the haversine distance, and the texts
//! Redis prints for distances and coordinates. Pure, operation for
//! operation as the C code does it, so results agree to the last bit.

use std::f64::consts::PI;

pub const STEP_MAX: u8 = 26;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = PI / 180.0;

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// A hash of `step` bits per coordinate (`bits == 0 && step == 0`: none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hash {
    pub bits: u64,
    pub step: u8,
}

impl Hash {
    fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Area {
    pub longitude: Range,
    pub latitude: Range,
}

const WGS84_LONG: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const WGS84_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// Bits of `x` at even positions, bits of `y` at odd positions.
fn interleave64(x: u32, y: u32) -> u64 {
    let mut r = 0u64;
    for i in 0..32 {
        r |= ((x as u64 >> i) & 1) << (2 * i);
        r |= ((y as u64 >> i) & 1) << (2 * i + 1);
    }
    r
}

/// The inverse: even bits in the low half, odd bits in the high half.
fn deinterleave64(v: u64) -> u64 {
    let mut x = 0u64;
    let mut y = 0u64;
    for i in 0..32 {
        x |= ((v >> (2 * i)) & 1) << i;
        y |= ((v >> (2 * i + 1)) & 1) << i;
    }
    x | (y << 32)
}

/// C's `(uint32_t)` of a double in range (truncation).
fn to_u32(d: f64) -> u32 {
    d as u32
}

/// C's `(uint64_t)` of a double, as x86-64 code compiled by gcc computes it
/// (a score that is not a geohash decodes to some point, never a crash).
pub fn c_double_to_u64(d: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if d.is_nan() {
        return 1 << 63;
    }
    if d < TWO63 {
        (d as i64) as u64
    } else {
        let t = d - TWO63;
        let r = if t < TWO63 { t as i64 } else { i64::MIN };
        (r as u64) ^ (1 << 63)
    }
}

pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<Hash> {
    if step > 32 || step == 0 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    lat_offset *= (1u64 << step) as f64;
    long_offset *= (1u64 << step) as f64;
    Some(Hash {
        bits: interleave64(to_u32(lat_offset), to_u32(long_offset)),
        step,
    })
}

pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<Hash> {
    encode(WGS84_LONG, WGS84_LAT, longitude, latitude, step)
}

pub fn decode(long_range: Range, lat_range: Range, hash: Hash) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let step = hash.step;
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << step) as f64;
    Some(Area {
        latitude: Range {
            min: lat_range.min + (ilato as f64 * 1.0 / div) * lat_scale,
            max: lat_range.min + ((ilato as u64 + 1) as f64 * 1.0 / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (ilono as f64 * 1.0 / div) * long_scale,
            max: long_range.min + ((ilono as u64 + 1) as f64 * 1.0 / div) * long_scale,
        },
    })
}

fn area_to_long_lat(area: &Area) -> (f64, f64) {
    let x = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let y = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (x, y)
}

/// A member's score to (longitude, latitude), Redis's `decodeGeohash`.
pub fn decode_score(score: f64) -> (f64, f64) {
    let hash = Hash {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    };
    let area = decode(WGS84_LONG, WGS84_LAT, hash).expect("step is not zero");
    area_to_long_lat(&area)
}

/// The score GEOADD stores for a valid point (52 bits).
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(align52)
}

pub fn align52(hash: Hash) -> u64 {
    hash.bits << (52 - hash.step as u32 * 2)
}

fn move_x(hash: &mut Hash, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> (64 - hash.step as u32 * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaa_aaaa_aaaa_aaaa >> (64 - hash.step as u32 * 2);
    hash.bits = x | y;
}

fn move_y(hash: &mut Hash, d: i8) {
    if d == 0 {
        return;
    }
    let x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - hash.step as u32 * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555_5555_5555_5555 >> (64 - hash.step as u32 * 2);
    hash.bits = x | y;
}

fn moved(hash: Hash, dx: i8, dy: i8) -> Hash {
    let mut h = hash;
    move_x(&mut h, dx);
    move_y(&mut h, dy);
    h
}

fn estimate_steps_by_radius(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// What a search covers: a circle or a box, around a point, in a unit.
#[derive(Clone, Copy, Debug)]
pub enum ShapeKind {
    Radius(f64),
    /// Width and height.
    Box(f64, f64),
}

#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Longitude, latitude of the centre.
    pub xy: (f64, f64),
    /// Meters per unit.
    pub conversion: f64,
    pub kind: ShapeKind,
}

impl Shape {
    fn bounds(&self) -> [f64; 4] {
        let (longitude, latitude) = self.xy;
        let (height, width) = match self.kind {
            ShapeKind::Radius(r) => (self.conversion * r, self.conversion * r),
            ShapeKind::Box(w, h) => (self.conversion * (h / 2.0), self.conversion * (w / 2.0)),
        };
        let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
        let long_delta_top =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
        let long_delta_bottom =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
        let southern = latitude < 0.0;
        [
            if southern {
                longitude - long_delta_bottom
            } else {
                longitude - long_delta_top
            },
            latitude - lat_delta,
            if southern {
                longitude + long_delta_bottom
            } else {
                longitude + long_delta_top
            },
            latitude + lat_delta,
        ]
    }

    /// The nine boxes to scan, in Redis's order (centre, N, S, E, W, NE, NW,
    /// SE, SW); a box not worth scanning is `None`.
    pub fn boxes(&self) -> [Option<Hash>; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounds();
        let (longitude, latitude) = self.xy;
        let radius_meters = match self.kind {
            ShapeKind::Radius(r) => r,
            ShapeKind::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
        } * self.conversion;
        let mut steps = estimate_steps_by_radius(radius_meters, latitude);
        let hash_at = |steps: u8| {
            encode(WGS84_LONG, WGS84_LAT, longitude, latitude, steps).unwrap_or(Hash {
                bits: 0,
                step: steps,
            })
        };
        let area_of = |h: Hash| decode(WGS84_LONG, WGS84_LAT, h).unwrap_or_default();
        let mut hash = hash_at(steps);
        let north = area_of(moved(hash, 0, 1));
        let south = area_of(moved(hash, 0, -1));
        let east = area_of(moved(hash, 1, 0));
        let west = area_of(moved(hash, -1, 0));
        let decrease = north.latitude.max < max_lat
            || south.latitude.min > min_lat
            || east.longitude.max < max_lon
            || west.longitude.min > min_lon;
        if steps > 1 && decrease {
            steps -= 1;
            hash = hash_at(steps);
        }
        let area = area_of(hash);
        // Neighbours in Redis's order: N, S, E, W, NE, NW, SE, SW.
        let dirs: [(i8, i8); 8] = [
            (0, 1),
            (0, -1),
            (1, 0),
            (-1, 0),
            (1, 1),
            (-1, 1),
            (1, -1),
            (-1, -1),
        ];
        let mut out = [None; 9];
        out[0] = Some(hash);
        for (i, &(dx, dy)) in dirs.iter().enumerate() {
            let mut keep = true;
            if steps >= 2 {
                if area.latitude.min < min_lat && dy == -1 {
                    keep = false;
                }
                if area.latitude.max > max_lat && dy == 1 {
                    keep = false;
                }
                if area.longitude.min < min_lon && dx == -1 {
                    keep = false;
                }
                if area.longitude.max > max_lon && dx == 1 {
                    keep = false;
                }
            }
            out[i + 1] = keep.then(|| moved(hash, dx, dy));
        }
        out
    }

    /// The distance (meters) of a point from the centre, if inside the shape.
    pub fn contains(&self, xy: (f64, f64)) -> Option<f64> {
        let (x1, y1) = self.xy;
        let (x2, y2) = xy;
        match self.kind {
            ShapeKind::Radius(r) => {
                let d = distance(x1, y1, x2, y2);
                (d <= r * self.conversion).then_some(d)
            }
            ShapeKind::Box(w, h) => {
                let (width_m, height_m) = (w * self.conversion, h * self.conversion);
                if lat_distance(y2, y1) > height_m / 2.0 {
                    return None;
                }
                if distance(x2, y2, x1, y2) > width_m / 2.0 {
                    return None;
                }
                Some(distance(x1, y1, x2, y2))
            }
        }
    }
}

/// Scores of the members inside a box: `[min, max)`.
pub fn box_score_range(hash: Hash) -> (u64, u64) {
    let min = align52(hash);
    let max = align52(Hash {
        bits: hash.bits.wrapping_add(1),
        step: hash.step,
    });
    (min, max)
}

fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// Haversine distance in meters, as Redis computes it.
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// GEOHASH's 11-character standard geohash of a member's score.
pub fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (x, y) = decode_score(score);
    let hash = encode(
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
        x,
        y,
        26,
    )
    .unwrap_or_default();
    let mut buf = [0u8; 11];
    for (i, b) in buf.iter_mut().enumerate() {
        let idx = if i == 10 {
            0
        } else {
            (hash.bits >> (52 - (i + 1) * 5)) & 0x1f
        };
        *b = ALPHABET[idx as usize];
    }
    buf
}

/// `fixedpoint_d2string(d, 4)`: a distance with four decimals.
pub fn distance_text(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".to_string();
    }
    let s = (d * 10000.0).round_ties_even();
    let s = if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&s) {
        i64::MIN
    } else {
        s as i64
    };
    let neg = s < 0;
    let v = s.unsigned_abs();
    format!(
        "{}{}.{:04}",
        if neg { "-" } else { "" },
        v / 10000,
        v % 10000
    )
}

/// `addReplyHumanLongDouble`'s text: `%.17Lf` without trailing zeros.
pub fn human_text(d: f64) -> String {
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_round_trips() {
        for (x, y) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ff_ffff, 0x155_5555),
            (u32::MAX, 7),
        ] {
            let v = deinterleave64(interleave64(x, y));
            assert_eq!((v as u32, (v >> 32) as u32), (x, y));
        }
    }

    #[test]
    fn palermo_matches_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo" stores 3479099956230698.
        assert_eq!(score_of(13.361389, 38.115556), Some(3479099956230698));
        let (x, y) = decode_score(3479099956230698.0);
        assert_eq!(human_text(x), "13.36138933897018433");
        assert_eq!(human_text(y), "38.11555639549629859");
        assert_eq!(&geohash_string(3479099956230698.0), b"sqc8b49rny0");
        let catania = decode_score(score_of(15.087269, 37.502669).unwrap() as f64);
        assert_eq!(
            distance_text(distance(x, y, catania.0, catania.1)),
            "166274.1516"
        );
    }

    #[test]
    fn texts() {
        assert_eq!(distance_text(0.00005), "0.0000");
        assert_eq!(distance_text(1.5), "1.5000");
        assert_eq!(human_text(-0.0), "0");
        assert_eq!(human_text(2.0), "2");
    }
}

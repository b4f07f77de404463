//! LOLWUT, as Redis 7.0.15 answers it: the version line for version 7,
//! Georg Nees's "Schotter" for version 5 and the skyline for version 6
//! (ports of Redis's `lolwut.c`, `lolwut5.c` and `lolwut6.c`; the art is
//! random, as Redis's).

use bytes::Bytes;
use rand::Rng;

use super::connection::REDIS_VERSION;
use super::flags::*;
use super::util::parse_i64;
use super::{Command, Ctx, KeySpec};

pub static COMMANDS: &[Command] = &[Command::new(
    "lolwut",
    -1,
    READONLY | FAST,
    KeySpec::None,
    lolwut,
    "server",
)];

const NOT_INT: &str = "ERR value is not an integer or out of range";

fn lolwut(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut args = args;
    let mut version = REDIS_VERSION.to_string();
    if args.len() >= 3 && args[1].eq_ignore_ascii_case(b"version") {
        let Some(v) = parse_i64(&args[2]) else {
            ctx.err(NOT_INT);
            return;
        };
        version = format!("{}.0.0", v as u32);
        // The versions' own arguments follow VERSION n.
        args = &args[2..];
    }
    let v = version.as_bytes();
    let text = if (v[0] == b'5' && v[1] == b'.' && v[2] != b'9') || version.starts_with("4.9") {
        schotter(args)
    } else if (v[0] == b'6' && v[1] == b'.' && v[2] != b'9') || version.starts_with("5.9") {
        skyline(args)
    } else {
        Ok(format!("Redis ver. {REDIS_VERSION}\n"))
    };
    match text {
        Ok(t) => ctx.out.verbatim("txt", t.as_bytes()),
        Err(e) => ctx.err(e),
    }
}

/// The optional numeric arguments after the version's own position, each
/// clamped as Redis does.
fn numbers<const N: usize>(
    args: &[Bytes],
    defaults: [i64; N],
    limits: [(i64, i64); N],
) -> Result<[i64; N], &'static str> {
    let mut out = defaults;
    for (i, slot) in out.iter_mut().enumerate() {
        if let Some(a) = args.get(i + 1) {
            *slot = parse_i64(a).ok_or(NOT_INT)?;
        }
        *slot = (*slot).clamp(limits[i].0, limits[i].1);
    }
    Ok(out)
}

struct Canvas {
    width: i32,
    height: i32,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: i32, height: i32, color: u8) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![color; (width as usize) * (height as usize)],
        }
    }

    fn set(&mut self, x: i32, y: i32, color: u8) {
        if x >= 0 && x < self.width && y >= 0 && y < self.height {
            self.pixels[(x + y * self.width) as usize] = color;
        }
    }

    fn get(&self, x: i32, y: i32) -> u8 {
        if x >= 0 && x < self.width && y >= 0 && y < self.height {
            self.pixels[(x + y * self.width) as usize]
        } else {
            0
        }
    }

    /// Bresenham, as `lwDrawLine`.
    fn line(&mut self, mut x1: i32, mut y1: i32, x2: i32, y2: i32, color: u8) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let sx = if x1 < x2 { 1 } else { -1 };
        let sy = if y1 < y2 { 1 } else { -1 };
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, color);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// `lwDrawSquare`: a square of `size` centred on (x, y), rotated.
    fn square(&mut self, x: i32, y: i32, size: f32, angle: f32, color: u8) {
        let size = (size / std::f32::consts::SQRT_2).round();
        let mut k = std::f32::consts::FRAC_PI_4 + angle;
        let mut p = [(0i32, 0i32); 4];
        for pt in &mut p {
            *pt = (
                (k.sin() * size + x as f32).round() as i32,
                (k.cos() * size + y as f32).round() as i32,
            );
            k += std::f32::consts::FRAC_PI_2;
        }
        for j in 0..4 {
            let (a, b) = (p[j], p[(j + 1) % 4]);
            self.line(a.0, a.1, b.0, b.1, color);
        }
    }
}

/// LOLWUT VERSION 5 [cols [squares-per-row [squares-per-col]]].
fn schotter(args: &[Bytes]) -> Result<String, &'static str> {
    let [cols, per_row, per_col] = numbers(args, [66, 8, 12], [(1, 1000), (1, 200), (1, 200)])?;
    let width = (cols * 2) as i32;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32) as i32 + padding * 2;
    let mut canvas = Canvas::new(width, height, 0);
    let mut rng = rand::thread_rng();
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0) as i32 + padding;
            let mut sy = (y as f32 * side + side / 2.0) as i32 + padding;
            let mut angle = 0.0;
            if y > 1 {
                let mut r = || {
                    let v: f32 = rng.gen::<f32>() / per_col as f32 * y as f32;
                    if rng.gen::<bool>() {
                        -v
                    } else {
                        v
                    }
                };
                let (r1, r2, r3) = (r(), r(), r());
                angle = r1;
                // C's `int += float`: the sum is truncated, not the part.
                sx = (sx as f32 + r2 * side / 3.0) as i32;
                sy = (sy as f32 + r3 * side / 3.0) as i32;
            }
            canvas.square(sx, sy, side, angle, 1);
        }
    }
    let mut text = String::new();
    let mut y = 0;
    while y < canvas.height {
        let mut x = 0;
        while x < canvas.width {
            // Braille: 2x4 pixels a character.
            let mut byte = 0u32;
            for (bit, (dx, dy)) in [
                (0, 0),
                (0, 1),
                (0, 2),
                (1, 0),
                (1, 1),
                (1, 2),
                (0, 3),
                (1, 3),
            ]
            .into_iter()
            .enumerate()
            {
                if canvas.get(x + dx, y + dy) != 0 {
                    byte |= 1 << bit;
                }
            }
            text.push(char::from_u32(0x2800 + byte).expect("braille block"));
            x += 2;
        }
        if y != canvas.height - 1 {
            text.push('\n');
        }
        y += 4;
    }
    text.push_str("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ");
    text.push_str(REDIS_VERSION);
    text.push('\n');
    Ok(text)
}

struct Skyscraper {
    xoff: i32,
    width: i32,
    height: i32,
    windows: bool,
    color: u8,
}

fn skyscraper(canvas: &mut Canvas, s: &Skyscraper, rng: &mut impl Rng) {
    let starty = canvas.height - 1;
    let endy = starty - s.height + 1;
    for y in (endy..=starty).rev() {
        for x in s.xoff..s.xoff + s.width {
            // The roof is four pixels narrower.
            if y == endy && (x <= s.xoff + 1 || x >= s.xoff + s.width - 2) {
                continue;
            }
            let mut color = s.color;
            if s.windows
                && x > s.xoff + 1
                && x < s.xoff + s.width - 2
                && y > endy + 1
                && y < starty - 1
            {
                let relx = x - (s.xoff + 1);
                let rely = y - (endy + 1);
                if (relx / 2) % 2 != 0 && rely % 2 != 0 {
                    loop {
                        color = 1 + rng.gen_range(0..2u8);
                        if color != s.color {
                            break;
                        }
                    }
                    if relx % 2 != 0 {
                        color = canvas.get(x - 1, y);
                    }
                }
            }
            canvas.set(x, y, color);
        }
    }
}

/// LOLWUT VERSION 6 [cols [rows]].
fn skyline(args: &[Bytes]) -> Result<String, &'static str> {
    let [cols, rows] = numbers(args, [80, 20], [(1, 1000), (1, 1000)])?;
    let mut canvas = Canvas::new(cols as i32, rows as i32, 3);
    let mut rng = rand::thread_rng();
    let h = canvas.height;
    // Background skyscrapers without windows, lighter ones behind.
    for color in [2u8, 1] {
        let mut offset = -10;
        while offset < canvas.width {
            offset += rng.gen_range(0..8);
            let width = 10 + rng.gen_range(0..9);
            let div = if color == 2 { 2 } else { 3 };
            let height = h / 2 + rng.gen_range(0..h.max(1)) / div;
            let s = Skyscraper {
                xoff: offset,
                width,
                height,
                windows: false,
                color,
            };
            skyscraper(&mut canvas, &s, &mut rng);
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    // The foreground, with windows.
    let mut offset = -10;
    while offset < canvas.width {
        offset += rng.gen_range(0..8);
        let mut width = 5 + rng.gen_range(0..14);
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + rng.gen_range(0..h.max(1)) / 2;
        let s = Skyscraper {
            xoff: offset,
            width,
            height,
            windows: true,
            color: 0,
        };
        skyscraper(&mut canvas, &s, &mut rng);
        offset += width + 5;
    }
    let mut text = String::new();
    for y in 0..canvas.height {
        for x in 0..canvas.width {
            let ce = match canvas.get(x, y) {
                1 => "0;90;100m",
                2 => "0;37;47m",
                3 => "0;97;107m",
                _ => "0;30;40m",
            };
            text.push_str("\x1b[");
            text.push_str(ce);
            text.push_str(" \x1b[0m");
        }
        if y != canvas.height - 1 {
            text.push('\n');
        }
    }
    text.push_str(
        "\nDedicated to the 8 bit game developers of past and present.\n\
         Original 8 bit image from Plaguemon by hikikomori. Redis ver. ",
    );
    text.push_str(REDIS_VERSION);
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|a| Bytes::from(a.to_string())).collect()
    }

    #[test]
    fn schotter_has_the_canvas_size_redis_draws() {
        // 66 columns: a canvas 132 pixels wide, 2 pixels a character.
        let t = schotter(&b("lolwut")).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0].chars().count(), 66);
        // side = 128/8 = 16, height = 16*12 + 4 = 196 pixels, 4 a line:
        // 49 lines, each ending in a newline (as in Redis, whose check for
        // the last line never matches), an empty line, then the credit.
        assert_eq!(lines.len(), 49 + 2);
        assert_eq!(lines[49], "");
        assert!(t.ends_with("Redis ver. 7.0.15\n"));
        assert_eq!(schotter(&b("lolwut x")), Err(NOT_INT));
    }

    #[test]
    fn skyline_is_cols_by_rows_cells() {
        let t = skyline(&b("lolwut 10 3")).unwrap();
        let art: Vec<&str> = t.lines().take(3).collect();
        for l in art {
            assert_eq!(l.matches("\x1b[0m").count(), 10);
        }
        assert!(t.contains("Plaguemon"));
    }
}

//! `thumbnail`: decode a base64 PNG or JPEG, resize it to the requested box and
//! answer with a base64 PNG.
//!
//! Input: `{"image": "<base64>", "width": 128, "height": 128, "mode": "fit"}`.
//! `mode` is `fit` (default: keep the aspect ratio, fit inside the box) or `fill`
//! (keep the aspect ratio, cover the box, crop the overflow). Width and height are
//! 1..=4096. Output: `{"image": "<base64 png>", "width", "height", "source": {"width",
//! "height", "format"}}`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use image::imageops::FilterType;
use image::{ImageFormat, ImageReader};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use wasmq_plugin::{Error, progress};

const MAX_SIDE: u32 = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    image: String,
    width: u32,
    height: u32,
    #[serde(default)]
    mode: Mode,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Fit,
    Fill,
}

#[derive(Serialize)]
struct Output {
    image: String,
    width: u32,
    height: u32,
    source: Source,
}

#[derive(Serialize)]
struct Source {
    width: u32,
    height: u32,
    format: &'static str,
}

fn run(input: Input) -> Result<Output, Error> {
    for (name, value) in [("width", input.width), ("height", input.height)] {
        if !(1..=MAX_SIDE).contains(&value) {
            return Err(Error::new(format!("{name} must be between 1 and {MAX_SIDE}")));
        }
    }
    let bytes = BASE64
        .decode(input.image.trim())
        .map_err(|e| Error::new(format!("image is not valid base64: {e}")))?;
    let reader = ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| Error::new(format!("image could not be read: {e}")))?;
    let format = match reader.format() {
        Some(ImageFormat::Png) => "png",
        Some(ImageFormat::Jpeg) => "jpeg",
        _ => return Err(Error::new("image must be a PNG or JPEG")),
    };
    let source = reader.decode().map_err(|e| Error::new(format!("image could not be decoded: {e}")))?;
    progress(40, "decoded");

    let thumb = match input.mode {
        Mode::Fit => source.resize(input.width, input.height, FilterType::Triangle),
        Mode::Fill => source.resize_to_fill(input.width, input.height, FilterType::Triangle),
    };
    progress(80, "resized");

    let mut png = Vec::new();
    thumb
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|e| Error::new(format!("thumbnail could not be encoded: {e}")))?;
    progress(100, "encoded");
    Ok(Output {
        image: BASE64.encode(&png),
        width: thumb.width(),
        height: thumb.height(),
        source: Source { width: source.width(), height: source.height(), format },
    })
}

wasmq_plugin::plugin!(run);

//! Per-layer progress of `pull` and `push`: bars with size and speed on a terminal, docker's
//! plain status lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use berth_image::{Descriptor, LayerEvent, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The short ID docker shows for a layer: 12 hex digits of its blob digest.
fn short(layer: &Descriptor) -> String {
    layer.digest.hex().chars().take(12).collect()
}

/// Bars when stdout is a terminal, status lines otherwise (as docker does).
pub fn for_output(push: bool) -> Box<dyn Progress> {
    if std::io::stdout().is_terminal() {
        Box::new(Bars::new(push))
    } else {
        Box::new(Lines::new(push))
    }
}

/// One bar per layer.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<usize, ProgressBar>>,
    push: bool,
}

impl Bars {
    fn new(push: bool) -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: Mutex::new(HashMap::new()),
            push,
        }
    }

    fn bar(&self, index: usize, layer: &Descriptor) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.entry(index)
            .or_insert_with(|| {
                let style = ProgressStyle::with_template(
                    "{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                let bar = self.multi.add(ProgressBar::new(layer.size));
                bar.set_style(style);
                bar.set_prefix(short(layer));
                bar.set_message("Waiting");
                bar
            })
            .clone()
    }
}

impl Progress for Bars {
    fn layers(&self, layers: &[Descriptor]) {
        for (index, layer) in layers.iter().enumerate() {
            self.bar(index, layer);
        }
    }

    fn layer(&self, index: usize, layer: &Descriptor, event: LayerEvent) {
        let bar = self.bar(index, layer);
        match event {
            LayerEvent::Downloading { done, total }
            | LayerEvent::Extracting { done, total }
            | LayerEvent::Uploading { done, total } => {
                let what = match event {
                    LayerEvent::Downloading { .. } => "Downloading",
                    LayerEvent::Extracting { .. } => "Extracting",
                    _ => "Pushing",
                };
                bar.set_message(what);
                bar.set_length(total);
                bar.set_position(done);
            }
            LayerEvent::Verifying => bar.set_message("Verifying"),
            LayerEvent::AlreadyExists => finish(&bar, "Already exists"),
            LayerEvent::Mounted => finish(&bar, "Mounted"),
            LayerEvent::Complete => finish(&bar, done_word(self.push)),
            LayerEvent::Failed { .. } => bar.abandon_with_message("Failed"),
        }
    }
}

fn finish(bar: &ProgressBar, message: &'static str) {
    bar.set_position(bar.length().unwrap_or(0));
    bar.finish_with_message(message);
}

fn done_word(push: bool) -> &'static str {
    if push {
        "Pushed"
    } else {
        "Pull complete"
    }
}

/// Docker's non-terminal output: one line per layer state change.
struct Lines {
    seen: Mutex<HashMap<usize, &'static str>>,
    push: bool,
}

impl Lines {
    fn new(push: bool) -> Lines {
        Lines {
            seen: Mutex::new(HashMap::new()),
            push,
        }
    }
}

impl Progress for Lines {
    fn layer(&self, index: usize, layer: &Descriptor, event: LayerEvent) {
        let state = match event {
            LayerEvent::Downloading { .. } => "Pulling fs layer",
            LayerEvent::Uploading { .. } => "Preparing",
            LayerEvent::Extracting { .. } => "Extracting",
            LayerEvent::Verifying => "Verifying Checksum",
            LayerEvent::AlreadyExists if self.push => "Layer already exists",
            LayerEvent::AlreadyExists => "Already exists",
            LayerEvent::Mounted => "Mounted from another repository",
            LayerEvent::Complete => done_word(self.push),
            LayerEvent::Failed { .. } => "Failed",
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.insert(index, state) != Some(state) {
            println!("{}: {state}", short(layer));
        }
    }
}

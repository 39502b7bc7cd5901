// Microphone capture for the kwspot demo: runs on the audio thread, low-pass filters and
// resamples the context's rate (often 48 kHz) to the model's rate, and posts 16-bit PCM
// chunks to the page, which sends them over the WebSocket.
class Resampler {
  constructor(inRate, outRate) {
    this.step = inRate / outRate; // input samples per output sample
    this.pos = 0; // position of the next output sample in `filtered`
    this.filtered = new Float32Array(0);
    if (inRate > outRate) {
      // windowed-sinc low-pass (Blackman), cut-off at 90 % of the output Nyquist
      const taps = 63, mid = (taps - 1) / 2, fc = 0.45 * outRate / inRate;
      this.h = new Float32Array(taps);
      let sum = 0;
      for (let n = 0; n < taps; n++) {
        const x = n - mid;
        const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
        const w = 0.42 - 0.5 * Math.cos(2 * Math.PI * n / (taps - 1))
          + 0.08 * Math.cos(4 * Math.PI * n / (taps - 1));
        this.h[n] = sinc * w;
        sum += this.h[n];
      }
      for (let n = 0; n < taps; n++) this.h[n] /= sum;
    } else {
      this.h = new Float32Array([1]);
    }
    this.history = new Float32Array(this.h.length - 1);
  }

  push(input) {
    const taps = this.h.length, hist = this.history.length;
    const x = new Float32Array(hist + input.length);
    x.set(this.history);
    x.set(input, hist);
    const y = new Float32Array(input.length);
    for (let i = 0; i < input.length; i++) {
      let acc = 0;
      for (let k = 0; k < taps; k++) acc += this.h[k] * x[i + taps - 1 - k];
      y[i] = acc;
    }
    this.history = x.slice(x.length - hist);
    const f = new Float32Array(this.filtered.length + y.length);
    f.set(this.filtered);
    f.set(y, this.filtered.length);
    const out = [];
    while (this.pos + 1 < f.length) {
      const i = Math.floor(this.pos), frac = this.pos - i;
      out.push(f[i] * (1 - frac) + f[i + 1] * frac);
      this.pos += this.step;
    }
    const used = Math.min(Math.floor(this.pos), f.length);
    this.filtered = f.slice(used);
    this.pos -= used;
    return out;
  }
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const target = options.processorOptions.targetRate;
    this.resampler = new Resampler(sampleRate, target);
    this.chunk = Math.round(target * (options.processorOptions.chunkMs || 40) / 1000);
    this.buffer = new Int16Array(this.chunk);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length) {
      // mix down to mono
      const mono = new Float32Array(channels[0].length);
      for (const ch of channels) for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / channels.length;
      for (const s of this.resampler.push(mono)) {
        this.buffer[this.filled++] = Math.max(-32768, Math.min(32767, Math.round(s * 32768)));
        if (this.filled === this.chunk) {
          this.port.postMessage(this.buffer.buffer, [this.buffer.buffer]);
          this.buffer = new Int16Array(this.chunk);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("kwspot-capture", CaptureProcessor);

// A WHIP (RFC 9725) publisher on libdatachannel, the WebRTC stack of OBS Studio's WHIP output,
// through its Node bindings (node-datachannel). It sends an Annex-B H.264 file as one sendonly
// video track, paced at --fps and looped until --seconds have passed, then ends the session.
//
//   node whip_publisher.mjs --url http://127.0.0.1:PORT/whip/ROOM --token JWT \
//        --h264 FILE.h264 [--fps 30] [--seconds 10] [--log-level Warning]
//
// Prints what happens (offer, answer, state changes, libdatachannel's own log at --log-level:
// Verbose, Debug, Info, Warning, Error or Fatal) on stdout; on failure prints one line starting
// with "whip-publisher: error:" on stderr and exits 1.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import {
  H264RtpPacketizer,
  PeerConnection,
  RtcpNackResponder,
  RtcpSrReporter,
  RtpPacketizationConfig,
  Video,
  cleanup,
  getLibraryVersion,
  initLogger,
} from 'node-datachannel';

const PAYLOAD_TYPE = 96;
const CLOCK_RATE = 90000;
const H264_FMTP = 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1';
const CONNECT_TIMEOUT_MS = 15000;
const HTTP_TIMEOUT_MS = 10000;
const LONG_START_CODE = Buffer.from([0, 0, 0, 1]);

class Failure extends Error {}

function log(message) {
  console.log(`whip-publisher: ${message}`);
}

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        h264: { type: 'string' },
        fps: { type: 'string', default: '30' },
        seconds: { type: 'string', default: '10' },
        'log-level': { type: 'string', default: 'Warning' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new Failure(error.message);
  }
  for (const name of ['url', 'token', 'h264']) {
    if (!values[name]) throw new Failure(`--${name} is required`);
  }
  const fps = Number(values.fps);
  const seconds = Number(values.seconds);
  if (!(fps > 0 && fps <= 120)) throw new Failure(`--fps must be in (0, 120], not ${values.fps}`);
  if (!(seconds > 0)) throw new Failure(`--seconds must be positive, not ${values.seconds}`);
  const levels = ['Verbose', 'Debug', 'Info', 'Warning', 'Error', 'Fatal'];
  const logLevel = values['log-level'];
  if (!levels.includes(logLevel)) {
    throw new Failure(`--log-level must be one of ${levels.join(', ')}, not ${logLevel}`);
  }
  return { url: values.url, token: values.token, h264: values.h264, fps, seconds, logLevel };
}

// -- Annex-B H.264 -------------------------------------------------------------------------------

/** The NAL units of an Annex-B byte stream (3- or 4-byte start codes), without start codes. */
function nalUnits(stream) {
  const starts = [];
  for (let i = 0; i + 2 < stream.length; i++) {
    if (stream[i] === 0 && stream[i + 1] === 0 && stream[i + 2] === 1) {
      starts.push(i + 3);
      i += 2;
    }
  }
  const units = [];
  for (let k = 0; k < starts.length; k++) {
    let end = k + 1 < starts.length ? starts[k + 1] - 3 : stream.length;
    // A NAL unit never ends in a zero byte: those belong to the next start code (or are
    // trailing_zero_8bits).
    while (end > starts[k] && stream[end - 1] === 0) end--;
    if (end > starts[k]) units.push(stream.subarray(starts[k], end));
  }
  return units;
}

const nalType = (unit) => unit[0] & 0x1f;
const isSlice = (unit) => nalType(unit) === 1 || nalType(unit) === 5;
// first_mb_in_slice is the slice header's first ue(v): it is 0 exactly when the first bit is 1.
const startsPicture = (unit) => isSlice(unit) && (unit[1] & 0x80) !== 0;

/**
 * Group NAL units into access units (H.264 §7.4.1.2.3): an AUD, SPS, PPS or SEI after a slice,
 * or a slice with first_mb_in_slice 0, starts a new one. Each frame is re-joined with 4-byte
 * start codes, the separator the packetizer is configured for.
 */
function accessUnits(stream) {
  const frames = [];
  let current = [];
  let hasSlice = false;
  const flush = () => {
    if (hasSlice) frames.push({
      data: Buffer.concat(current.flatMap((unit) => [LONG_START_CODE, unit])),
      idr: current.some((unit) => nalType(unit) === 5),
    });
    current = [];
    hasSlice = false;
  };
  for (const unit of nalUnits(stream)) {
    const type = nalType(unit);
    if (hasSlice && (startsPicture(unit) || (type >= 6 && type <= 9))) flush();
    current.push(unit);
    if (isSlice(unit)) hasSlice = true;
  }
  flush();
  return frames;
}

// -- WHIP ----------------------------------------------------------------------------------------

async function http(method, url, token, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/sdp';
  try {
    return await fetch(url, {
      method, headers, body, redirect: 'follow', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
  } catch (error) {
    throw new Failure(`${method} ${url} failed: ${error.cause?.message ?? error.message}`);
  }
}

function waitFor(what, check, subscribe, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Failure(`not ${what} within ${timeoutMs / 1000} s`)), timeoutMs);
    const poll = () => {
      let verdict;
      try {
        verdict = check();
      } catch (error) {
        clearTimeout(timer);
        reject(error);
        return;
      }
      if (verdict) {
        clearTimeout(timer);
        resolve();
      }
    };
    subscribe(poll);
    poll();
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const args = options();
  initLogger(args.logLevel, (level, message) => log(`libdatachannel ${level}: ${message}`));
  let stream;
  try {
    stream = readFileSync(args.h264);
  } catch (error) {
    throw new Failure(`cannot read ${args.h264}: ${error.message}`);
  }
  const frames = accessUnits(stream);
  if (frames.length === 0) throw new Failure(`${args.h264} holds no H.264 slices`);
  if (!frames[0].idr) throw new Failure(`${args.h264} does not start with an IDR frame`);
  log(`libdatachannel ${getLibraryVersion()}, ${frames.length} frames ` +
      `(${frames.filter((f) => f.idr).length} IDR) from ${args.h264}`);

  const listeners = new Set();
  const changed = () => listeners.forEach((listener) => listener());
  const subscribe = (listener) => listeners.add(listener);

  const pc = new PeerConnection('whip-publisher', { iceServers: [] });
  let pcState = 'new';
  pc.onStateChange((state) => {
    pcState = state;
    log(`peer connection ${state}`);
    changed();
  });
  pc.onIceStateChange((state) => log(`ICE ${state}`));
  pc.onGatheringStateChange((state) => {
    log(`gathering ${state}`);
    changed();
  });
  pc.onSignalingStateChange((state) => log(`signalling ${state}`));

  const ssrc = 1 + Math.floor(Math.random() * 0xfffffffe);
  const cname = 'whip-publisher';
  const video = new Video('0', 'SendOnly');
  video.addH264Codec(PAYLOAD_TYPE, H264_FMTP);
  video.addSSRC(ssrc, cname, 'whip-publisher', 'video');
  const track = pc.addTrack(video);
  let trackOpen = false;
  track.onOpen(() => {
    trackOpen = true;
    log('track open');
    changed();
  });
  track.onError((error) => log(`track error: ${error}`));

  const rtpConfig = new RtpPacketizationConfig(ssrc, cname, PAYLOAD_TYPE, CLOCK_RATE);
  const packetizer = new H264RtpPacketizer('LongStartSequence', rtpConfig);
  packetizer.addToChain(new RtcpSrReporter(rtpConfig));
  packetizer.addToChain(new RtcpNackResponder());
  track.setMediaHandler(packetizer);

  let location = null;
  try {
    pc.setLocalDescription('offer');
    await waitFor('done gathering', () => pc.gatheringState() === 'complete', subscribe,
      CONNECT_TIMEOUT_MS);
    const offer = pc.localDescription().sdp;
    log(`offer:\n${offer.trimEnd()}`);

    const response = await http('POST', args.url, args.token, offer);
    const answer = await response.text();
    if (response.status !== 201) {
      throw new Failure(`POST ${args.url} -> ${response.status}: ${answer.trim()}`);
    }
    const header = response.headers.get('location');
    if (!header) throw new Failure(`POST ${args.url} -> 201 without a Location header`);
    location = new URL(header, response.url).href;
    log(`201 Created, session ${location}`);
    log(`answer:\n${answer.trimEnd()}`);
    pc.setRemoteDescription(answer, 'answer');

    await waitFor('connected', () => {
      if (pcState === 'failed' || pcState === 'closed') {
        throw new Failure(`peer connection ${pcState}`);
      }
      return pcState === 'connected' && trackOpen;
    }, subscribe, CONNECT_TIMEOUT_MS);

    const total = Math.max(1, Math.round(args.seconds * args.fps));
    const firstTimestamp = rtpConfig.timestamp;
    const started = performance.now();
    let sentBytes = 0;
    for (let index = 0; index < total; index++) {
      if (pcState !== 'connected') throw new Failure(`peer connection ${pcState} while sending`);
      const frame = frames[index % frames.length];
      rtpConfig.timestamp = (firstTimestamp + Math.round(index * CLOCK_RATE / args.fps)) >>> 0;
      if (!track.sendMessageBinary(frame.data)) {
        log(`frame ${index} not sent (track not open?)`);
      }
      sentBytes += frame.data.length;
      await sleep(Math.max(0, started + (index + 1) * 1000 / args.fps - performance.now()));
    }
    log(`sent ${total} frames, ${sentBytes} bytes of H.264 in ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s`);

    const deleted = await http('DELETE', location, args.token);
    location = null;
    if (deleted.status !== 200) {
      throw new Failure(`DELETE -> ${deleted.status}: ${(await deleted.text()).trim()}`);
    }
    log('session deleted');
  } finally {
    if (location) {
      // Best effort on failure: do not leave the session to ICE consent expiry.
      await http('DELETE', location, args.token).catch(() => {});
    }
    track.close();
    pc.close();
  }
}

let code = 0;
try {
  await main();
} catch (error) {
  code = 1;
  const reason = error instanceof Failure ? error.message
    : `${error?.name ?? 'Error'}: ${error?.message ?? String(error)}`.replaceAll('\n', ' ');
  console.error(`whip-publisher: error: ${reason}`);
}
cleanup();
process.exit(code);

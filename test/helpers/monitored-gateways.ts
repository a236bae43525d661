/**
 * Two domains, each with its own Postfix and domsec-milter, watched by a
 * private Prometheus: example.org signs and encrypts outbound with
 * certificates that name a real OCSP responder (`openssl ocsp`); example.net
 * decrypts and verifies inbound, trusts example.org's CA, checks revocation
 * by OCSP and caches in a real Redis.
 */

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificatePem, generateDomainPki } from '../../src/pki/keygen.js';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { type ServingMilter, startServe } from './cli.js';
import { type OcspResponder, startOcspResponder } from './ocsp-responder.js';
import { cmsEncrypt } from './openssl.js';
import { createTestCa, type TestLeaf } from './pki.js';
import { freePort } from './ports.js';
import { type PostfixInstance, startPostfix } from './postfix.js';
import { type PrivatePrometheus, startPrometheus } from './prometheus.js';
import { startRedis, type TestRedis } from './redis.js';
import { type SmtpSink, startSmtpSink } from './smtp-sink.js';

export interface MonitoredGateways {
  readonly prometheus: PrivatePrometheus;
  /** Date.now() when Prometheus was ready. */
  readonly started: number;
  readonly redis: TestRedis;
  readonly ocsp: OcspResponder;
  /** example.org: Postfix A relays to sink A through milter A. */
  readonly postfixA: PostfixInstance;
  readonly milterA: ServingMilter;
  readonly sinkA: SmtpSink;
  /** example.net: Postfix B relays to sink B through milter B. */
  readonly postfixB: PostfixInstance;
  readonly milterB: ServingMilter;
  readonly sinkB: SmtpSink;
  /** The milters' HTTP endpoints, `host:port` as Prometheus labels them (instance). */
  readonly endpointA: string;
  readonly endpointB: string;
  /** An S/MIME entity encrypted to example.org's key, which example.net does not hold. */
  readonly foreignEncrypted: Buffer;
  stop(): Promise<void>;
}

export interface MonitoredGatewaysOptions {
  readonly scrapeSeconds: number;
  /** Alert rule files Prometheus loads. */
  readonly ruleFiles: readonly string[];
}

/** A key file pair in the DOMSEC_KEYS_DIR layout, issuing CA appended. */
async function writeKeyPair(dir: string, base: string, leaf: TestLeaf, caPem: string) {
  await writeFile(join(dir, `${base}.key.pem`), leaf.keyPem, { mode: 0o600 });
  await writeFile(join(dir, `${base}.crt.pem`), leaf.certPem + caPem);
}

export async function startMonitoredGateways(
  o: MonitoredGatewaysOptions,
): Promise<MonitoredGateways> {
  const dir = await mkdtemp(join(tmpdir(), 'domsec-monitored-'));
  // Stopped in reverse order, also when a later start fails.
  const stops: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  const started = <T extends { stop(): Promise<unknown> } | { close(): Promise<unknown> }>(
    x: T,
  ): T => {
    stops.push(() => ('stop' in x ? x.stop() : x.close()));
    return x;
  };
  try {
    // Known in advance: certificates name the responder, Prometheus names the endpoints.
    const [ocspPort, httpA, httpB] = await Promise.all([freePort(), freePort(), freePort()]);
    const [endpointA, endpointB] = [`127.0.0.1:${httpA}`, `127.0.0.1:${httpB}`];
    // First: Prometheus hands new targets to its scrapers only after ~5 s.
    const prometheus = started(
      await startPrometheus({
        targets: [endpointA, endpointB],
        intervalSeconds: o.scrapeSeconds,
        ruleFiles: o.ruleFiles,
      }),
    );
    const prometheusReady = Date.now();

    const ocspUrl = `http://127.0.0.1:${ocspPort}/`;
    const orgCa = await createTestCa(dir, 'example.org domain CA');
    const leaf = (kind: 'signing' | 'confidentiality', purpose: 'signing' | 'encryption') =>
      orgCa.issue({
        commonName: `example.org domain ${kind}`,
        rfc822Names: [`domain-${kind}-authority@example.org`],
        dnsNames: ['example.org'],
        purpose,
        ocspUrl,
      });
    const [orgSign, orgEncrypt, netPki] = await Promise.all([
      leaf('signing', 'signing'),
      leaf('confidentiality', 'encryption'),
      generateDomainPki('example.net'),
    ]);
    const orgKeys = join(dir, 'org');
    await mkdir(orgKeys, { mode: 0o700 });
    await writeKeyPair(orgKeys, 'example.org.sign', orgSign, orgCa.certPem);
    await writeKeyPair(orgKeys, 'example.org.encrypt', orgEncrypt, orgCa.certPem);
    await writeDomainPki(join(dir, 'net'), 'example.net', netPki);
    await mkdir(join(dir, 'partners'));
    await writeFile(
      join(dir, 'partners/example.net.pem'),
      certificatePem(netPki.encryption.certificate),
    );
    const foreignEncrypted = await cmsEncrypt(
      Buffer.from('Content-Type: text/plain\r\n\r\nfor example.org only\r\n'),
      [orgEncrypt.certPath],
    );

    const [redis, sinkA, sinkB, ocsp] = await Promise.all([
      startRedis().then(started),
      startSmtpSink().then(started),
      startSmtpSink().then(started),
      startOcspResponder({
        indexPath: orgCa.indexPath,
        caCertPath: orgCa.certPath,
        signerCertPath: orgCa.certPath,
        signerKeyPath: orgCa.keyPath,
        port: ocspPort,
        nextUpdateMinutes: 60,
      }).then(started),
    ]);
    const [milterA, milterB] = await Promise.all([
      startServe({
        DOMSEC_LOCAL_DOMAINS: 'example.org',
        DOMSEC_KEYS_DIR: orgKeys,
        DOMSEC_PARTNER_CERTS: join(dir, 'partners'),
        DOMSEC_AUTHSERV_ID: 'mx.example.org',
        DOMSEC_HTTP_LISTEN: endpointA,
      }).then(started),
      startServe({
        DOMSEC_LOCAL_DOMAINS: 'example.net',
        DOMSEC_KEYS_DIR: join(dir, 'net'),
        DOMSEC_TRUST_ANCHORS: orgCa.certPath,
        DOMSEC_REVOCATION: 'ocsp',
        DOMSEC_REDIS_URL: redis.url,
        // Postfix B's test clients connect from 127.0.0.1: they must count as outside.
        DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
        DOMSEC_AUTHSERV_ID: 'mx.example.net',
        // Undecryptable mail delivered marked smime=permerror (the default would tempfail it).
        DOMSEC_ON_DECRYPT_FAILURE: 'accept',
        DOMSEC_HTTP_LISTEN: endpointB,
      }).then(started),
    ]);
    const [postfixA, postfixB] = await Promise.all([
      startPostfix({ relayPort: sinkA.port, milter: milterA.address }).then(started),
      startPostfix({ relayPort: sinkB.port, milter: milterB.address }).then(started),
    ]);
    return {
      prometheus,
      started: prometheusReady,
      redis,
      ocsp,
      postfixA,
      milterA,
      sinkA,
      postfixB,
      milterB,
      sinkB,
      endpointA,
      endpointB,
      foreignEncrypted,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * A certificate authority and server certificates made for a test with the openssl CLI: a CA
 * (its own key, self-signed) and certificates it signs for 127.0.0.1 and localhost (SAN), each
 * with a serial number of the test's choosing, so that a test can tell which one a connection got.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate, createHash } from 'node:crypto';
import { connect, type PeerCertificate } from 'node:tls';

const run = promisify(execFile);

export interface TestCa {
  dir: string;
  certFile: string;
  keyFile: string;
  /** The CA certificate (PEM), to trust in clients. */
  pem: Buffer;
}

export interface TestCert {
  certFile: string;
  keyFile: string;
  /** Hex, upper case, as `X509Certificate.serialNumber` and `getPeerCertificate().serialNumber` give it. */
  serialNumber: string;
  fingerprint256: string;
  /** base64 SHA-256 of the public key (SPKI): Chromium's `--ignore-certificate-errors-spki-list`. */
  spkiSha256: string;
}

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args);
}

/** A CA (EC P-256 key, valid one day) in `dir`. */
export async function makeCa(dir: string, name = 'serverpush test CA'): Promise<TestCa> {
  const keyFile = join(dir, 'ca.key');
  const certFile = join(dir, 'ca.pem');
  await openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { dir, certFile, keyFile, pem: await readFile(certFile) };
}

/**
 * A server certificate signed by `ca` for 127.0.0.1 and localhost, with serial `serial` (hex),
 * written to `NAME.pem` and `NAME.key` in the CA's folder.
 */
export async function makeServerCert(ca: TestCa, name: string, serial: string): Promise<TestCert> {
  const keyFile = join(ca.dir, `${name}.key`);
  const csrFile = join(ca.dir, `${name}.csr`);
  const certFile = join(ca.dir, `${name}.pem`);
  const extFile = join(ca.dir, `${name}.ext`);
  await writeFile(extFile, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${name}`]);
  await openssl(['x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', `0x${serial}`, '-days', '1', '-extfile', extFile, '-out', certFile]);
  const certificate = new X509Certificate(await readFile(certFile));
  const spki = certificate.publicKey.export({ type: 'spki', format: 'der' });
  return { certFile, keyFile, serialNumber: certificate.serialNumber, fingerprint256: certificate.fingerprint256, spkiSha256: createHash('sha256').update(spki).digest('base64') };
}

/** The certificate a new TLS connection to `port` gets (trusting `ca`), and the ALPN protocol chosen. */
export function peerCertificate(port: number, ca: Buffer, alpn = ['h2', 'http/1.1']): Promise<{ certificate: PeerCertificate; alpnProtocol: string | false }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: alpn }, () => {
      const certificate = socket.getPeerCertificate();
      const alpnProtocol = socket.alpnProtocol ?? false;
      socket.destroy();
      resolve({ certificate, alpnProtocol });
    });
    socket.once('error', reject);
  });
}

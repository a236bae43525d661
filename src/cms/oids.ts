/** Every object identifier the product uses, in one place. */

export const OID = {
  // Content types (RFC 5652, 5083, 3274)
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  authEnvelopedData: '1.2.840.113549.1.9.16.1.23',
  compressedData: '1.2.840.113549.1.9.16.1.9',

  // Attributes
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  smimeCapabilities: '1.2.840.113549.1.9.15',
  signatureType: '1.2.840.113549.1.9.16.2.28',
  signingCertificateV2: '1.2.840.113549.1.9.16.2.47',
  encrypKeyPref: '1.2.840.113549.1.9.16.2.11',
  cmsAlgorithmProtect: '1.2.840.113549.1.9.16.2.52',
  securityLabel: '1.2.840.113549.1.9.16.2.2',
  mlExpansionHistory: '1.2.840.113549.1.9.16.2.3',

  // RFC 3183 signature types
  originatorSig: '1.2.840.113549.1.9.16.9.1',
  domainSig: '1.2.840.113549.1.9.16.9.2',
  additionalAttributesSig: '1.2.840.113549.1.9.16.9.3',
  reviewSig: '1.2.840.113549.1.9.16.9.4',

  // Digests
  md5: '1.2.840.113549.2.5',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',

  // Signatures
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
  sha512WithRSAEncryption: '1.2.840.113549.1.1.13',
  sha1WithRSAEncryption: '1.2.840.113549.1.1.5',
  md5WithRSAEncryption: '1.2.840.113549.1.1.4',
  ecdsaWithSha1: '1.2.840.10045.4.1',
  rsassaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  rsaesOaep: '1.2.840.113549.1.1.7',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  ed25519: '1.3.101.112',
  x25519: '1.3.101.110',
  secp256r1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',

  // Key agreement (RFC 5753) and key wrap
  dhSinglePassStdDhSha256Kdf: '1.3.132.1.11.1',
  dhSinglePassStdDhSha384Kdf: '1.3.132.1.11.2',
  dhSinglePassStdDhSha512Kdf: '1.3.132.1.11.3',
  dhSinglePassStdDhSha1Kdf: '1.3.133.16.840.63.0.2',
  ecdhHkdfSha256: '1.2.840.113549.1.9.16.3.19',
  ecdhHkdfSha384: '1.2.840.113549.1.9.16.3.20',
  ecdhHkdfSha512: '1.2.840.113549.1.9.16.3.21',
  aes128Wrap: '2.16.840.1.101.3.4.1.5',
  aes192Wrap: '2.16.840.1.101.3.4.1.25',
  aes256Wrap: '2.16.840.1.101.3.4.1.45',

  // Content encryption
  aes128Cbc: '2.16.840.1.101.3.4.1.2',
  aes192Cbc: '2.16.840.1.101.3.4.1.22',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  aes128Gcm: '2.16.840.1.101.3.4.1.6',
  aes192Gcm: '2.16.840.1.101.3.4.1.26',
  aes256Gcm: '2.16.840.1.101.3.4.1.46',
  chacha20Poly1305: '1.2.840.113549.1.9.16.3.18',
  desEde3Cbc: '1.2.840.113549.3.7',

  // S/MIME capabilities
  preferBinaryInside: '1.2.840.113549.1.9.16.11.1',

  // Compression (RFC 3274)
  zlibCompress: '1.2.840.113549.1.9.16.3.8',

  // Certificates
  emailProtection: '1.3.6.1.5.5.7.3.4',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',

  // PKCS#12 (RFC 7292) and password-based encryption (RFC 8018)
  sha224: '2.16.840.1.101.3.4.2.4',
  encryptedData: '1.2.840.113549.1.7.6',
  pkcs12KeyBag: '1.2.840.113549.1.12.10.1.1',
  pkcs12ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  pkcs12CertBag: '1.2.840.113549.1.12.10.1.3',
  pkcs12SafeContentsBag: '1.2.840.113549.1.12.10.1.6',
  pkcs12X509Certificate: '1.2.840.113549.1.9.22.1',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSha1: '1.2.840.113549.2.7',
  hmacWithSha256: '1.2.840.113549.2.9',
  hmacWithSha384: '1.2.840.113549.2.10',
  hmacWithSha512: '1.2.840.113549.2.11',
  pbeSha1Rc4_128: '1.2.840.113549.1.12.1.1',
  pbeSha1Rc4_40: '1.2.840.113549.1.12.1.2',
  pbeSha1TripleDes: '1.2.840.113549.1.12.1.3',
  pbeSha1TwoKeyTripleDes: '1.2.840.113549.1.12.1.4',
  pbeSha1Rc2_128: '1.2.840.113549.1.12.1.5',
  pbeSha1Rc2_40: '1.2.840.113549.1.12.1.6',
} as const;

/** Human names for reports, e.g. signature types. */
export const SIGNATURE_TYPE_NAMES: Readonly<Record<string, string>> = {
  [OID.originatorSig]: 'originator',
  [OID.domainSig]: 'domain',
  [OID.additionalAttributesSig]: 'additional-attributes',
  [OID.reviewSig]: 'review',
};

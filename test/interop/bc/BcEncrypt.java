// Bouncy Castle as the sending peer of test/interop/bouncy-castle.test.ts:
// encrypts a file to a recipient EC certificate with ephemeral-static ECDH
// (RFC 5753), the recipient named by key identifier (rKeyId, RFC 5652
// 6.2.2), and writes the ContentInfo as Bouncy Castle encodes it.
//
//   java -cp bcprov.jar:bcpkix.jar:bcutil.jar:DIR BcEncrypt cbc|gcm CERT.pem IN OUT
//   java -cp ... BcEncrypt --version     (the provider's version, e.g. 1.72)
//
// cbc: EnvelopedData, AES-128-CBC. gcm: AuthEnvelopedData (RFC 5083), AES-256-GCM.
// Key agreement dhSinglePass-stdDH-sha256kdf-scheme with AES-128 key wrap.

import java.io.FileReader;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.Security;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import org.bouncycastle.asn1.ASN1OctetString;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cms.CMSAlgorithm;
import org.bouncycastle.cms.CMSAuthEnvelopedDataGenerator;
import org.bouncycastle.cms.CMSEnvelopedDataGenerator;
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.jcajce.JceCMSContentEncryptorBuilder;
import org.bouncycastle.cms.jcajce.JceKeyAgreeRecipientInfoGenerator;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.operator.OutputAEADEncryptor;

public final class BcEncrypt {
  public static void main(String[] args) throws Exception {
    if (args.length == 1 && args[0].equals("--version")) {
      System.out.println(new BouncyCastleProvider().getVersionStr());
      return;
    }
    if (args.length != 4 || !(args[0].equals("cbc") || args[0].equals("gcm"))) {
      System.err.println("usage: BcEncrypt cbc|gcm CERT.pem IN OUT");
      System.exit(2);
    }
    Security.addProvider(new BouncyCastleProvider());
    X509CertificateHolder holder;
    try (PEMParser pem = new PEMParser(new FileReader(args[1]))) {
      holder = (X509CertificateHolder) pem.readObject();
    }
    X509Certificate cert = new JcaX509CertificateConverter().setProvider("BC").getCertificate(holder);
    Extension ski = holder.getExtension(Extension.subjectKeyIdentifier);
    if (ski == null) throw new IllegalArgumentException("the certificate has no subjectKeyIdentifier");
    byte[] keyId = ASN1OctetString.getInstance(ski.getParsedValue()).getOctets();
    PublicKey recipientKey = cert.getPublicKey();

    // The originator key: ephemeral, on the recipient's curve.
    KeyPairGenerator kpg = KeyPairGenerator.getInstance("EC", "BC");
    kpg.initialize(((ECPublicKey) recipientKey).getParams());
    KeyPair ephemeral = kpg.generateKeyPair();
    JceKeyAgreeRecipientInfoGenerator kari =
        new JceKeyAgreeRecipientInfoGenerator(
                CMSAlgorithm.ECDH_SHA256KDF,
                ephemeral.getPrivate(),
                ephemeral.getPublic(),
                CMSAlgorithm.AES128_WRAP)
            .setProvider("BC");
    kari.addRecipient(keyId, recipientKey);

    CMSProcessableByteArray content = new CMSProcessableByteArray(Files.readAllBytes(Paths.get(args[2])));
    byte[] out;
    if (args[0].equals("cbc")) {
      CMSEnvelopedDataGenerator gen = new CMSEnvelopedDataGenerator();
      gen.addRecipientInfoGenerator(kari);
      out = gen.generate(content,
              new JceCMSContentEncryptorBuilder(CMSAlgorithm.AES128_CBC).setProvider("BC").build())
          .getEncoded();
    } else {
      CMSAuthEnvelopedDataGenerator gen = new CMSAuthEnvelopedDataGenerator();
      gen.addRecipientInfoGenerator(kari);
      OutputAEADEncryptor enc = (OutputAEADEncryptor)
          new JceCMSContentEncryptorBuilder(CMSAlgorithm.AES256_GCM).setProvider("BC").build();
      out = gen.generate(content, enc).getEncoded();
    }
    Files.write(Paths.get(args[3]), out);
  }
}

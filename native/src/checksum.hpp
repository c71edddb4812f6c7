// SHA-256 of files and the checksum sidecars of checkpoints: `<file>.sha256` holds
// "<64 hex>  <file name>\n" (the format of sha256sum, so `sha256sum -c` checks it by hand).
// Torch-free (smnas_core).
#pragma once
#include <string>

namespace smnas {

// Which compression function runs: Auto takes the x86 SHA extensions where the CPU has them,
// Portable always the plain C++ rounds (the tests compare the two).
enum class Sha256Kernel { Auto, Portable };

// whether Auto runs on the SHA extensions on this CPU
bool sha256UsesShaExtensions();

// lowercase hex SHA-256 (FIPS 180-4) of a byte string / of a file's contents (throws naming the file)
std::string sha256Hex(const std::string& bytes, Sha256Kernel kernel = Sha256Kernel::Auto);
std::string sha256File(const std::string& path);

// the sidecar path of a file
std::string checksumPath(const std::string& file);

// Writes the sidecar of `file` (whose checksum is computed from `contentOf`, by default `file`
// itself) atomically: temp + fsync + rename. `file` names the entry inside the sidecar.
void writeChecksumFile(const std::string& file, const std::string& contentOf = "");

enum class ChecksumStatus { Ok, Missing, Mismatch, Unreadable };

struct ChecksumCheck {
  ChecksumStatus status;
  std::string detail;  // why, for a message ("sha256 of the file ab12... != recorded cd34...")
};

// Compares a file with its sidecar.
ChecksumCheck verifyChecksumFile(const std::string& file);

}  // namespace smnas

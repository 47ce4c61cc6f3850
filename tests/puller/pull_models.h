// A puller run for the tests of the storage sources (puller_tests only: the other test binaries
// that share storage_peers.cc do not link the puller).
#pragma once

#include <cstdint>
#include <string>

namespace storagetest {

// Runs a puller over <root>/configs/models.json into <root>/models, loading models on the model
// server at `port`, with no retries, until its initial models are in place (false when they
// are not within 60 s), then stops it.
bool pullInitialModels(const std::string& root, uint16_t port);

}  // namespace storagetest

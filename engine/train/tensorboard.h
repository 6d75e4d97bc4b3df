// TensorBoard event files written from a run folder's events.jsonl, so `tensorboard --logdir RUN`
// (or a folder of runs) shows DeltaTune's curves. The format, written from its specification:
//   a TFRecord stream: each record is  uint64 length | uint32 masked CRC32C(length) | data |
//   uint32 masked CRC32C(data), little-endian, with mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8;
//   each record's data is an Event protobuf: wall_time (1, double), step (2, int64), file_version
//   (3, string, "brain.Event:2" in the first record) or summary (5): repeated Value (1) with tag (1,
//   string) and simple_value (2, float).
// Scalars: train/loss, train/lr, train/grad_norm, train/tokens_per_s per step; eval/<metric> per
// evaluation (a confusion matrix is not a scalar and stays in events.jsonl).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dt::tensorboard {

std::uint32_t crc32c(const void* data, std::size_t n);  // Castagnoli, as TFRecord uses
std::uint32_t masked_crc32c(const void* data, std::size_t n);
// One TFRecord: the framing around `data`.
std::string record(const std::string& data);

// The event file's name inside the run folder: events.out.tfevents.<run start, s>.deltatune.
std::string event_file_path(const std::string& run_dir);
// Writes (or rewrites, atomically) the run's event file from its events.jsonl; returns its path.
// Torn lines (a killed run) are skipped. Throws dt::Error naming the folder when it holds no run.
std::string export_run(const std::string& run_dir);

}  // namespace dt::tensorboard

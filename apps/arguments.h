// Command-line arguments for the `pneumo` subcommands and the benchmark binaries: `--name value`
// and `--flag` options with defaults and help text, optional positional arguments, parsed
// strictly (an unknown option or a bad value is a one-line UsageError).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/check.h"

namespace pneumo::cli {

// A mistake on the command line (unknown option, missing or malformed value): the caller prints
// what() as one line and exits with 2, where other pneumo::Errors exit with 1.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

// Options whose value name is DIR, FILE, CSV, PNG, HTML, RUN_DIR or PATH take paths: an empty
// value given for one is a UsageError (an empty path would name the current or the root folder).
bool is_path_value(const std::string& value_name);

class Arguments {
 public:
  // `pneumo train`: Arguments("train", summary). A stand-alone binary such as a benchmark:
  // Arguments("bench_network", summary, "") so that usage reads "bench_network [options]".
  Arguments(std::string command, std::string summary, std::string program = "pneumo");

  // Declare options before parse(). value_name is shown in --help ("N", "DIR", ...).
  void option(const std::string& name, const std::string& value_name, const std::string& default_value,
              const std::string& help);
  void flag(const std::string& name, const std::string& help);
  // Accept between minimum and maximum arguments that do not start with -- (none by default).
  void positionals(const std::string& value_name, const std::string& help, size_t minimum, size_t maximum);

  // Parses argv after the subcommand (or after the program name). Returns false when --help was
  // given (help already printed on stdout). Throws UsageError on an unknown option, a missing
  // value or a wrong number of positional arguments.
  bool parse(const std::vector<std::string>& arguments);
  bool parse(int argc, char** argv);  // argv[0] is the program

  std::string text(const std::string& name) const;
  int64_t integer(const std::string& name) const;  // UsageError names the option and the value
  int64_t integer(const std::string& name, int64_t minimum) const;
  double number(const std::string& name) const;
  // The option's value, which must be one of `allowed` (UsageError listing them otherwise).
  std::string choice(const std::string& name, const std::vector<std::string>& allowed) const;
  bool has(const std::string& name) const;  // flag given, or option given explicitly
  const std::vector<std::string>& positional_values() const { return positional_values_; }
  std::string help() const;

 private:
  struct Option {
    std::string value_name, default_value, help;
    bool is_flag = false;
  };
  std::string usage_name() const;  // "pneumo train" or "bench_network"

  std::string command_, summary_, program_;
  std::vector<std::string> order_;
  std::map<std::string, Option> options_;
  std::map<std::string, std::string> values_;
  std::string positional_name_, positional_help_;
  size_t positional_minimum_ = 0, positional_maximum_ = 0;
  std::vector<std::string> positional_values_;
};

}  // namespace pneumo::cli

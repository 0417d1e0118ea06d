// Command-line arguments for the `pneumo` subcommands: `--name value` and `--flag` options with
// defaults and help text, parsed strictly (an unknown option or a bad value is a one-line error).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pneumo::cli {

class Arguments {
 public:
  Arguments(std::string command, std::string summary);

  // Declare options before parse(). value_name is shown in --help ("N", "DIR", ...).
  void option(const std::string& name, const std::string& value_name, const std::string& default_value,
              const std::string& help);
  void flag(const std::string& name, const std::string& help);

  // Parses argv after the subcommand. Returns false when --help was given (help already printed).
  // Throws pneumo::Error on an unknown option, a missing value or a stray positional argument.
  bool parse(const std::vector<std::string>& arguments);

  std::string text(const std::string& name) const;
  int64_t integer(const std::string& name) const;   // error names the option and the value
  double number(const std::string& name) const;
  bool has(const std::string& name) const;          // flag given, or option given explicitly
  std::string help() const;

 private:
  struct Option {
    std::string value_name, default_value, help;
    bool is_flag = false;
  };
  std::string command_, summary_;
  std::vector<std::string> order_;
  std::map<std::string, Option> options_;
  std::map<std::string, std::string> values_;
};

}  // namespace pneumo::cli

#include "apps/arguments.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "engine/check.h"

namespace pneumo::cli {

Arguments::Arguments(std::string command, std::string summary, std::string program)
    : command_(std::move(command)), summary_(std::move(summary)), program_(std::move(program)) {}

std::string Arguments::usage_name() const { return program_.empty() ? command_ : program_ + " " + command_; }

void Arguments::option(const std::string& name, const std::string& value_name, const std::string& default_value,
                       const std::string& help) {
  order_.push_back(name);
  options_[name] = Option{value_name, default_value, help, false};
}

void Arguments::flag(const std::string& name, const std::string& help) {
  order_.push_back(name);
  options_[name] = Option{"", "", help, true};
}

void Arguments::positionals(const std::string& value_name, const std::string& help, size_t minimum, size_t maximum) {
  positional_name_ = value_name;
  positional_help_ = help;
  positional_minimum_ = minimum;
  positional_maximum_ = maximum;
}

bool is_path_value(const std::string& value_name) {
  for (const char* kind : {"DIR", "FILE", "CSV", "PNG", "HTML", "RUN_DIR", "PATH"})
    if (value_name == kind) return true;
  return false;
}

bool Arguments::parse(int argc, char** argv) {
  return parse(std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
}

bool Arguments::parse(const std::vector<std::string>& arguments) {
  for (size_t i = 0; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    if (argument == "--help" || argument == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (argument.rfind("--", 0) != 0) {
      if (positional_values_.size() < positional_maximum_) {
        if (argument.empty() && is_path_value(positional_name_))
          throw UsageError(command_ + ": " + positional_name_ + " expects a path, got an empty one");
        positional_values_.push_back(argument);
        continue;
      }
      throw UsageError(command_ + ": unexpected argument '" + argument + "' (options start with --; see --help)");
    }
    std::string name = argument.substr(2), value;
    bool inline_value = false;
    if (auto equals = name.find('='); equals != std::string::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
      inline_value = true;
    }
    auto found = options_.find(name);
    if (found == options_.end())
      throw UsageError(command_ + ": unknown option --" + name + " (see " + usage_name() + " --help)");
    if (found->second.is_flag) {
      if (inline_value) throw UsageError(command_ + ": --" + name + " takes no value");
      values_[name] = "1";
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= arguments.size())
        throw UsageError(command_ + ": --" + name + " needs a value (" + found->second.value_name + ")");
      value = arguments[++i];
    }
    // A path that is empty would mean the current folder or "/" to the file system (an empty
    // --run-dir once wrote a run into the root folder): for a path option it is a usage error.
    if (value.empty() && is_path_value(found->second.value_name))
      throw UsageError(command_ + ": --" + name + " expects a path (" + found->second.value_name +
                       "), got an empty one");
    values_[name] = value;
  }
  if (positional_values_.size() < positional_minimum_)
    throw UsageError(command_ + ": expected " + (positional_minimum_ == positional_maximum_ ? "" : "at least ") +
                     std::to_string(positional_minimum_) + " " + positional_name_ + " argument" +
                     (positional_minimum_ == 1 ? "" : "s") + " (see " + usage_name() + " --help)");
  return true;
}

std::string Arguments::text(const std::string& name) const {
  auto value = values_.find(name);
  if (value != values_.end()) return value->second;
  auto found = options_.find(name);
  if (found == options_.end()) throw Error("internal: undeclared option --" + name);
  return found->second.default_value;
}

int64_t Arguments::integer(const std::string& name) const {
  std::string value = text(name);
  try {
    size_t used = 0;
    long long parsed = std::stoll(value, &used);
    if (used == value.size()) return parsed;
  } catch (const std::exception&) {
  }
  throw UsageError(command_ + ": --" + name + " expects an integer, got '" + value + "'");
}

int64_t Arguments::integer(const std::string& name, int64_t minimum) const {
  const int64_t value = integer(name);
  if (value < minimum)
    throw UsageError(command_ + ": --" + name + " expects an integer >= " + std::to_string(minimum) + ", got " +
                     std::to_string(value));
  return value;
}

std::string Arguments::choice(const std::string& name, const std::vector<std::string>& allowed) const {
  std::string value = text(name);
  std::string listed;
  for (const auto& candidate : allowed) {
    if (candidate == value) return value;
    listed += (listed.empty() ? "" : ", ") + candidate;
  }
  throw UsageError(command_ + ": --" + name + " expects one of " + listed + ", got '" + value + "'");
}

double Arguments::number(const std::string& name) const {
  std::string value = text(name);
  try {
    size_t used = 0;
    double parsed = std::stod(value, &used);
    if (used == value.size() && std::isfinite(parsed)) return parsed;
  } catch (const std::exception&) {
  }
  throw UsageError(command_ + ": --" + name + " expects a number, got '" + value + "'");
}

bool Arguments::has(const std::string& name) const { return values_.count(name) > 0; }

std::string Arguments::help() const {
  std::ostringstream out;
  out << "usage: " << usage_name() << " [options]";
  if (positional_maximum_ > 0)
    out << (positional_minimum_ == 0 ? " [" : " ") << positional_name_ << (positional_maximum_ > 1 ? "..." : "")
        << (positional_minimum_ == 0 ? "]" : "");
  out << "\n\n" << summary_ << "\n\n";
  if (positional_maximum_ > 0) {
    const std::string left = "  " + positional_name_;
    out << left << std::string(left.size() < 28 ? 28 - left.size() : 1, ' ') << positional_help_ << "\n\n";
  }
  out << "options:\n";
  for (const auto& name : order_) {
    const Option& option = options_.at(name);
    std::string left = "  --" + name + (option.is_flag ? "" : " " + option.value_name);
    out << left;
    if (left.size() < 28)
      out << std::string(28 - left.size(), ' ');
    else
      out << "\n" << std::string(28, ' ');
    out << option.help;
    if (!option.is_flag && !option.default_value.empty()) out << " (default: " << option.default_value << ")";
    out << "\n";
  }
  out << "  --help                    show this help\n";
  return out.str();
}

}  // namespace pneumo::cli

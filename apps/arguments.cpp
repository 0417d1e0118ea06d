#include "apps/arguments.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "engine/check.h"

namespace pneumo::cli {

Arguments::Arguments(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

void Arguments::option(const std::string& name, const std::string& value_name,
                       const std::string& default_value, const std::string& help) {
  order_.push_back(name);
  options_[name] = Option{value_name, default_value, help, false};
}

void Arguments::flag(const std::string& name, const std::string& help) {
  order_.push_back(name);
  options_[name] = Option{"", "", help, true};
}

bool Arguments::parse(const std::vector<std::string>& arguments) {
  for (size_t i = 0; i < arguments.size(); ++i) {
    std::string argument = arguments[i];
    if (argument == "--help" || argument == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (argument.rfind("--", 0) != 0)
      throw Error(command_ + ": unexpected argument '" + argument + "' (options start with --; see --help)");
    std::string name = argument.substr(2), value;
    bool inline_value = false;
    if (auto equals = name.find('='); equals != std::string::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
      inline_value = true;
    }
    auto found = options_.find(name);
    if (found == options_.end())
      throw Error(command_ + ": unknown option --" + name + " (see pneumo " + command_ + " --help)");
    if (found->second.is_flag) {
      if (inline_value) throw Error(command_ + ": --" + name + " takes no value");
      values_[name] = "1";
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= arguments.size())
        throw Error(command_ + ": --" + name + " needs a value (" + found->second.value_name + ")");
      value = arguments[++i];
    }
    values_[name] = value;
  }
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
  throw Error(command_ + ": --" + name + " expects an integer, got '" + value + "'");
}

double Arguments::number(const std::string& name) const {
  std::string value = text(name);
  try {
    size_t used = 0;
    double parsed = std::stod(value, &used);
    if (used == value.size() && std::isfinite(parsed)) return parsed;
  } catch (const std::exception&) {
  }
  throw Error(command_ + ": --" + name + " expects a number, got '" + value + "'");
}

bool Arguments::has(const std::string& name) const { return values_.count(name) > 0; }

std::string Arguments::help() const {
  std::ostringstream out;
  out << "usage: pneumo " << command_ << " [options]\n\n" << summary_ << "\n\noptions:\n";
  for (const auto& name : order_) {
    const Option& option = options_.at(name);
    std::string left = "  --" + name + (option.is_flag ? "" : " " + option.value_name);
    out << left;
    if (left.size() < 28) out << std::string(28 - left.size(), ' ');
    else out << "\n" << std::string(28, ' ');
    out << option.help;
    if (!option.is_flag && !option.default_value.empty()) out << " (default: " << option.default_value << ")";
    out << "\n";
  }
  out << "  --help                    show this help\n";
  return out.str();
}

}  // namespace pneumo::cli

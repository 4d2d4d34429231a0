// readCsvTable: the static side of a stream-static join from a CSV file.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "gale/connectors/csv.h"

namespace gale {
namespace {

namespace fs = std::filesystem;

class CsvTable : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    path_ = fs::temp_directory_path() / ("gale-csv-table-" + std::to_string(::getpid()) + ".csv");
    std::ofstream(path_) << text;
    return path_.string();
  }
  void TearDown() override { fs::remove(path_); }
  // The message readCsvTable throws for `text`.
  std::string errorFor(const std::string& text) {
    try {
      readCsvTable(write(text), {"user_id", Type::Int64}, kColumns);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "no error";
  }
  const Fields kColumns{{"name", Type::String}, {"country", Type::String}};
  fs::path path_;
};

TEST_F(CsvTable, FindsColumnsByNameConvertsTheKeyAndIgnoresOtherColumns) {
  auto t = readCsvTable(write("country,user_id,signup,name\r\n"
                              "NO,1,2020,\"Nordmann, Kari\"\n"
                              "\n"
                              "PE,2,2021,Quispe\n"),
                        {"user_id", Type::Int64}, kColumns);
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ(t->columns().names(), (std::vector<std::string>{"name", "country"}));
  ASSERT_NE(t->find(int64_t{1}), nullptr);
  EXPECT_EQ(*t->find(int64_t{1}), (Values{std::string("Nordmann, Kari"), std::string("NO")}));
  EXPECT_EQ(*t->find(int64_t{2}), (Values{std::string("Quispe"), std::string("PE")}));
  EXPECT_EQ(t->find(std::string("1")), nullptr) << "the key was converted to int64";
}

TEST_F(CsvTable, BadFilesAreErrorsNamingTheFileLineAndReason) {
  EXPECT_NE(errorFor("user_id,name\n1,a\n").find(":1: the header has no column 'country'"),
            std::string::npos);
  EXPECT_NE(errorFor("user_id,name,country\n1,a,NO\nx,b,SE\n")
                .find(":3: column 'user_id': "),
            std::string::npos);
  EXPECT_NE(errorFor("user_id,name,country\n1,a,NO\n1,b,SE\n").find(":3: the key 1 is already"),
            std::string::npos);
  EXPECT_NE(errorFor("user_id,name,country\n1,a\n").find(":2: the line has 2 columns"),
            std::string::npos);
  EXPECT_NE(errorFor("user_id,name,country\n1,\"a,NO\n").find(":2: unterminated"),
            std::string::npos);
  EXPECT_NE(errorFor("").find(":1: no header line"), std::string::npos);
  EXPECT_THROW(readCsvTable("/nonexistent/users.csv", {"user_id", Type::Int64}, kColumns),
               std::runtime_error);
}

}  // namespace
}  // namespace gale

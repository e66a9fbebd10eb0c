-- :Milestones [FILTER] opens the project's milestones (see lua/milestones/init.lua).
vim.api.nvim_create_user_command("Milestones", function(opts)
  require("milestones").open_list(opts.args)
end, { nargs = "?", desc = "List the project's milestones (PATH=VALUE filters, else words to search)" })

module fwyy/gotmpl

go 1.19
